package spec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"gopkg.in/yaml.v3"
)

// Load reads the fleet repository at dir with the default limits: see
// LoadWith.
func Load(dir string) (*Fleet, error) { return LoadWith(dir, Options{}) }

// LoadWith reads every *.yaml and *.yml file of the repository at dir
// (hidden files and folders such as .git, and what .fpgaopsignore lists,
// are left out), checks each document against the schema and all of them
// against each other and against the GBS files they name, and returns the
// fleet. On failure the error is an ErrorList holding every mistake, with
// files relative to dir, causes before their effects.
//
// Every file is read through a Repo: symlinks are followed inside the
// repository only, only regular files are read, and each is bounded by a
// limit checked before reading (opts for YAML files, the Policy's
// limits.maxBitstreamBytes for GBS files, which are read through once for
// their digest and never held whole).
func LoadWith(dir string, opts Options) (*Fleet, error) {
	r, err := OpenRepo(dir)
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	defer r.Close()
	f, err := r.load(loadOptions{Options: opts})
	if f != nil {
		f.Root = dir
	}
	return f, err
}

// loadOptions add to Options what tests tune.
type loadOptions struct {
	Options
	// noQuick checks every document with CUE.
	noQuick bool
	// validators, when set, are used instead of compiling the schema: one
	// per worker.
	validators []*validator
}

// load reads and checks the repository in four steps: list the YAML
// files; parse and check each file on its own, in parallel; check the GBS
// files, with the Policy's limit now known; check the documents against
// each other.
func (r *Repo) load(opts loadOptions) (*Fleet, error) {
	o := opts.Options.withDefaults()
	var errs ErrorList
	ignore, err := r.ignoreRules()
	if err != nil {
		errs = append(errs, fileError(err, ""))
	}
	var files []walked
	if ignore != nil {
		var werrs ErrorList
		files, werrs = r.yamlFiles(ignore)
		errs = append(errs, werrs...)
	}
	if len(files) == 0 && len(errs) == 0 {
		// Most likely the wrong directory: an empty fleet would plan to
		// prune everything.
		return nil, ErrorList{{Msg: "no fleet documents: the repository holds no .yaml or .yml file, hidden and ignored ones aside"}}
	}

	if o.Cache != nil {
		if o.Cache.begin() {
			defer o.Cache.end()
		} else {
			o.Cache = nil
		}
	}
	results := make([]fileResult, len(files))
	workers := min(runtime.GOMAXPROCS(0), max(len(files), 1))
	if len(opts.validators) > 0 {
		workers = len(opts.validators)
	}
	// yaml.v3 trees take many times the size of their file: parse at most
	// one largest file's worth of YAML at a time, whatever the number of
	// workers.
	parsing := semaphore.NewWeighted(o.MaxYAMLBytes)
	err = forEach(len(files), workers, func(w int) (func(i int), error) {
		// CUE values are not shared between goroutines: each worker
		// compiles the schema into its own context.
		var v *validator
		if len(opts.validators) > 0 {
			v = opts.validators[w]
		} else {
			var err error
			if v, err = newValidator(); err != nil {
				return nil, err
			}
		}
		v.noQuick = opts.noQuick
		return func(i int) { results[i] = loadFile(r, files[i], v, o, parsing) }, nil
	})
	if err != nil {
		return nil, err
	}
	var docs []*document
	ghosts := map[declared]bool{}
	if len(errs) > 0 {
		// A file the walk could not follow may declare anything.
		ghosts[declared{"", anyName}] = true
	}
	for _, res := range results {
		errs = append(errs, res.errs...)
		docs = append(docs, res.docs...)
		for _, g := range res.ghosts {
			ghosts[g] = true
		}
	}

	var bitstreams []*document
	for _, d := range docs {
		if d.bitstream != nil {
			bitstreams = append(bitstreams, d)
		}
	}
	maxGBS := policyLimit(docs)
	gbsErrs := make([]ErrorList, len(bitstreams))
	err = forEach(len(bitstreams), min(runtime.GOMAXPROCS(0), max(len(bitstreams), 1)), func(int) (func(i int), error) {
		return func(i int) {
			d := bitstreams[i]
			gbsErrs[i] = checkBitstream(r, d, maxGBS).at(stageDocument)
			if !d.broken {
				d.release()
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range gbsErrs {
		errs = append(errs, e...)
	}

	fleet, cerrs := assemble(docs, ghosts)
	errs = append(errs, cerrs.at(stageFleet)...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return fleet, nil
}

// forEach calls the function start gives each of workers goroutines for
// the indices 0 to n-1, each index once.
func forEach(n, workers int, start func(worker int) (func(i int), error)) error {
	var next atomic.Int64
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			fn, err := start(w)
			if err != nil {
				return err
			}
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				fn(i)
			}
		})
	}
	return g.Wait()
}

// policyLimit is the GBS limit of the repository's Policy (the first one,
// if there are several), or the default.
func policyLimit(docs []*document) int64 {
	for _, d := range docs {
		if d.policy != nil {
			return d.policy.MaxBitstreamBytes()
		}
	}
	return DefaultMaxBitstreamBytes
}

// document is one YAML document of the repository, checked against the
// schema and decoded.
type document struct {
	file string
	kind string
	// root is the document's mapping; positions in it are file positions.
	// It is dropped once the document is decoded and checked on its own
	// (see release), keeping only the positions later checks may cite.
	root  *yaml.Node
	saved []savedPos
	label string // the name, once root is dropped

	// broken documents failed the schema or hold a repeated field. They
	// are decoded and checked all the same, leaving out the fields in
	// bad: their names count as declared, so that references to them do
	// not cascade into more errors, and the checks that need a bad field
	// are skipped.
	broken bool
	// bad holds the dotted paths ("fpgas.0.board") of the fields that are
	// wrong or missing; "" stands for the whole document.
	bad map[string]bool

	node      *Node
	bitstream *Bitstream
	binding   *Binding
	policy    *Policy
}

func (d *document) name() string {
	if d.root == nil {
		return d.label
	}
	if n, _ := lookupYAML(d.root, []string{"name"}); n != nil {
		return n.Value
	}
	return ""
}

// ok reports whether the field at path, and every field holding it,
// passed the schema.
func (d *document) ok(path ...string) bool {
	if len(d.bad) == 0 {
		return true
	}
	if d.bad[""] {
		return false
	}
	key := ""
	for i, p := range path {
		if i > 0 {
			key += "."
		}
		key += p
		if d.bad[key] {
			return false
		}
	}
	return true
}

// okUnder reports whether every field under path passed the schema.
func (d *document) okUnder(path string) bool {
	if !d.ok(path) {
		return false
	}
	for k := range d.bad {
		if strings.HasPrefix(k, path+".") {
			return false
		}
	}
	return true
}

// has reports whether the document sets a field, right or wrong.
func (d *document) has(field string) bool {
	n, _ := lookupYAML(d.root, []string{field})
	return n != nil
}

// savedPos is a position kept after the tree is dropped.
type savedPos struct {
	path string
	pos  Pos
}

// release drops the document's tree, keeping the positions the checks
// across documents cite. A fleet's trees are most of the loader's memory,
// and the garbage collector's work.
func (d *document) release() {
	if d.root == nil {
		return // released already (a document from a FileCache)
	}
	var paths [][]string
	switch d.kind {
	case KindBinding:
		paths = [][]string{{"name"}, {"node"}, {"fpga"}, {"function"}, {"vm"}, {"pool"}, {"bitstream"}}
	case KindNode:
		paths = [][]string{{"name"}, {"kubernetes"}}
		for i := range d.node.FPGAs {
			paths = append(paths, []string{"fpgas", strconv.Itoa(i), "vfs"})
		}
	default:
		paths = [][]string{{"name"}}
	}
	d.saved = make([]savedPos, len(paths))
	for i, p := range paths {
		d.saved[i] = savedPos{strings.Join(p, "."), d.pos(p...)}
	}
	d.label = d.name()
	d.root = nil
}

// pos is the position of the value at a path in the document, or of the
// nearest value above it that exists.
func (d *document) pos(field ...string) Pos {
	if d.root == nil {
		key := strings.Join(field, ".")
		for _, s := range d.saved {
			if s.path == key {
				return s.pos
			}
		}
		return d.saved[0].pos // the name: still the right document
	}
	n, parent := lookupYAML(d.root, field)
	if n == nil {
		n = parent
	}
	if n == nil {
		n = d.root
	}
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *document) errorf(field []string, format string, args ...any) Error {
	return Error{Pos: d.pos(field...), Msg: fmt.Sprintf(format, args...)}
}

// declared is a name a document declares. A ghost is one declared by a
// document that could not be read as one, such as a document with a
// syntax error (kind "" when its kind is not known, name anyName when its
// name is not): a reference to it is not reported as undeclared.
type declared struct{ kind, name string }

// anyName stands for every name of a kind: a document whose name is
// missing or wrong may be the one a reference means.
const anyName = "\x00any"

type fileResult struct {
	docs   []*document
	ghosts []declared
	errs   ErrorList
}

// loadFile reads, parses, checks and decodes every document of one file.
func loadFile(r *Repo, w walked, v *validator, o Options, parsing *semaphore.Weighted) fileResult {
	var res fileResult
	file := w.name
	open := r.openListed
	if w.viaLink {
		open = r.open
	}
	// A file that is not read may declare anything.
	unread := declared{"", anyName}
	f, size, err := open(file, o.MaxYAMLBytes)
	if err != nil {
		res.errs = append(res.errs, yamlFileError(err))
		res.ghosts = append(res.ghosts, unread)
		return res
	}
	_ = parsing.Acquire(context.Background(), max(size, 1))
	defer parsing.Release(max(size, 1))
	data, err := readAll(file, f, size, o.MaxYAMLBytes)
	f.Close()
	if err != nil {
		res.errs = append(res.errs, yamlFileError(err))
		res.ghosts = append(res.ghosts, unread)
		return res
	}
	var key cacheKey
	if o.Cache != nil {
		key = cacheKey{file: file, sum: sha256.Sum256(data), opts: Options{MaxYAMLBytes: o.MaxYAMLBytes, MaxDocumentValues: o.MaxDocumentValues}}
		if cached, ok := o.Cache.get(key); ok {
			return cached
		}
		defer func() { o.Cache.put(key, res) }()
	}
	trees, broken, errs := parseDocuments(file, data)
	if !fleetFile(trees, broken) {
		res.errs = append(res.errs, Error{
			Pos:   Pos{File: file, Line: 1, Col: 1},
			Msg:   fmt.Sprintf("not a fleet file: none of its documents has apiVersion %s or kind %s or %s; list it in %s if it is not part of the fleet", APIVersion, strings.Join(kinds[:len(kinds)-1], ", "), kinds[len(kinds)-1], IgnoreFile),
			stage: stageYAML,
		})
		return res
	}
	res.errs = append(res.errs, errs...)
	for _, c := range broken {
		if g, ok := ghostOf(c); ok {
			res.ghosts = append(res.ghosts, g)
		}
	}
	for _, n := range trees {
		loadDocument(&res, file, n.Content[0], v, o)
	}
	return res
}

// yamlFileError places an error reading a YAML file.
func yamlFileError(err error) Error {
	if errors.Is(err, ErrTooLarge) {
		return fileError(err, " for a YAML file")
	}
	return fileError(err, "")
}

// loadDocument checks and decodes one document.
func loadDocument(res *fileResult, file string, root *yaml.Node, v *validator, o Options) {
	errf := func(s stage, at *yaml.Node, format string, args ...any) {
		res.errs = append(res.errs, Error{Pos: Pos{File: file, Line: at.Line, Col: at.Column}, Msg: fmt.Sprintf(format, args...), stage: s})
	}
	if root.Kind != yaml.MappingNode {
		errf(stageYAML, root, "a document must be a mapping with apiVersion, kind and name, got %s", gotText(root))
		return
	}
	ghost := func(kind string) {
		if n, _ := lookupYAML(root, []string{"name"}); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
			res.ghosts = append(res.ghosts, declared{kind, n.Value})
		}
	}
	kindNode, _ := lookupYAML(root, []string{"kind"})
	knownKind := kindNode != nil && kindNode.Kind == yaml.ScalarNode && knownKind(kindNode.Value)
	if written, expanded := documentSize(root, o.MaxDocumentValues); written > o.MaxDocumentValues {
		errf(stageYAML, root, "the document holds %d values, more than the limit of %d values per document", written, o.MaxDocumentValues)
		ghost(kindOrAny(knownKind, kindNode))
		return
	} else if expanded > o.MaxDocumentValues {
		errf(stageYAML, root, "the document holds %d values as written, and more than %d, the limit per document, once its aliases are expanded", written, o.MaxDocumentValues)
		ghost(kindOrAny(knownKind, kindNode))
		return
	}
	dups := duplicateKeys(root, nil, nil)
	for _, k := range dups {
		errf(stageYAML, k.key, "duplicate field %s", k.key.Value)
	}
	switch {
	case kindNode == nil:
		errf(stageSchema, root, "missing required field kind (one of %s)", strings.Join(kinds, ", "))
		ghost("")
		return
	case !knownKind:
		errf(stageSchema, kindNode, "kind: want one of %s, got %s", strings.Join(kinds, ", "), gotText(kindNode))
		ghost("")
		return
	}
	d := &document{file: file, kind: kindNode.Value, root: root}
	ferrs := v.validate(d.kind, root)
	who := ""
	if n, _ := lookupYAML(root, []string{"name"}); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
		who = strings.ToLower(d.kind) + " " + n.Value + ": "
	}
	for _, fe := range ferrs {
		errf(stageSchema, fe.node, "%s%s", who, fe.msg)
	}
	if len(ferrs) > 0 || len(dups) > 0 {
		d.broken = true
		d.bad = make(map[string]bool, len(ferrs)+len(dups))
		for _, fe := range ferrs {
			if !fe.unknown {
				d.bad[strings.Join(fe.path, ".")] = true
			}
		}
		for _, k := range dups {
			d.bad[k.path] = true
		}
	}
	decode(d)
	switch {
	case d.node != nil:
		res.errs = append(res.errs, checkNode(d).at(stageDocument)...)
	case d.policy != nil:
		res.errs = append(res.errs, checkPolicy(d).at(stageDocument)...)
	}
	// A bitstream's file is checked once the Policy's limit is known;
	// broken documents keep their trees for the checks across documents.
	if d.bitstream == nil && !d.broken {
		d.release()
	}
	res.docs = append(res.docs, d)
}

func kindOrAny(known bool, n *yaml.Node) string {
	if known {
		return n.Value
	}
	return ""
}

// fleetFile reports whether a file holds fleet documents: any document
// with an apiVersion of fpgaops or a kind of one, read or not. A file
// with no document at all (only comments) is not refused.
func fleetFile(trees []*yaml.Node, broken []chunk) bool {
	if len(trees) == 0 && len(broken) == 0 {
		return true
	}
	for _, t := range trees {
		root := t.Content[0]
		if root.Kind != yaml.MappingNode {
			continue
		}
		if a, _ := lookupYAML(root, []string{"apiVersion"}); a != nil && strings.HasPrefix(a.Value, "fpgaops") {
			return true
		}
		if k, _ := lookupYAML(root, []string{"kind"}); k != nil && knownKind(k.Value) {
			return true
		}
	}
	for _, c := range broken {
		if fleetText.Match(c.text) {
			return true
		}
	}
	return false
}

var (
	// fleetText finds a fleet document's marks in text that does not parse.
	fleetText = regexp.MustCompile(`(?m)^(apiVersion:[ \t]*["']?fpgaops|kind:[ \t]*["']?(Node|Bitstream|Binding|Policy)\b)`)
	kindLine  = regexp.MustCompile(`(?m)^kind:[ \t]*["']?([A-Za-z]+)`)
	nameLine  = regexp.MustCompile(`(?m)^name:[ \t]*["']?([-a-zA-Z0-9._]+)`)
)

// ghostOf reads what a document that does not parse declares, from its
// top-level kind: and name: lines.
func ghostOf(c chunk) (declared, bool) {
	m := nameLine.FindSubmatch(c.text)
	if m == nil {
		return declared{}, false
	}
	g := declared{name: string(m[1])}
	if k := kindLine.FindSubmatch(c.text); k != nil && knownKind(string(k[1])) {
		g.kind = string(k[1])
	}
	return g, true
}

// parseDocuments parses a file's documents. A file is parsed in one go;
// only when that fails is it cut into documents, so that a syntax error in
// one document does not hide the documents after it. Documents holding
// only comments are left out. It returns the documents that parse, the
// chunks that do not, and their errors.
func parseDocuments(file string, data []byte) ([]*yaml.Node, []chunk, ErrorList) {
	var trees []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		n := new(yaml.Node)
		err := dec.Decode(n)
		if errors.Is(err, io.EOF) {
			return trees, nil, nil
		}
		if err != nil {
			break
		}
		if len(n.Content) > 0 {
			trees = append(trees, n)
		}
	}
	trees = trees[:0]
	var errs ErrorList
	var broken []chunk
	for _, c := range splitDocuments(data) {
		n := new(yaml.Node)
		if err := yaml.Unmarshal(c.text, n); err != nil {
			errs = append(errs, syntaxError(file, c, err))
			broken = append(broken, c)
			continue
		}
		if len(n.Content) > 0 {
			shift(n, c.line-1)
			trees = append(trees, n)
		}
	}
	return trees, broken, errs
}

// documentSize counts a document's values (mappings, lists, scalars) as
// written, each alias counting one, and with its aliases expanded, which
// it stops counting past limit: a few lines of anchors and aliases can
// stand for billions of values, which checking the document would expand.
func documentSize(n *yaml.Node, limit int) (written, expanded int) {
	aliases := false
	var count func(n *yaml.Node) int
	count = func(n *yaml.Node) int {
		c := 1
		aliases = aliases || n.Kind == yaml.AliasNode
		for _, k := range n.Content {
			c += count(k)
		}
		return c
	}
	written = count(n)
	if written > limit || !aliases {
		return written, written
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if expanded++; expanded > limit {
			return false
		}
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			return walk(n.Alias)
		}
		for _, c := range n.Content {
			if !walk(c) {
				return false
			}
		}
		return true
	}
	walk(n)
	return written, expanded
}

// chunk is one document's text and the file line it starts on.
type chunk struct {
	text []byte
	line int
}

// splitDocuments cuts a file before each "---" marker line, so that a
// syntax error in one document does not hide the documents after it. Each
// chunk keeps its marker, which yaml.v3 reads as the document start.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	start, startLine, line := 0, 1, 1
	for i := 0; i < len(data); line++ {
		next := len(data)
		if end := bytes.IndexByte(data[i:], '\n'); end >= 0 {
			next = i + end + 1
		}
		if i > start && isMarker(data[i:next]) {
			out = append(out, chunk{data[start:i], startLine})
			start, startLine = i, line
		}
		i = next
	}
	if start < len(data) {
		out = append(out, chunk{data[start:], startLine})
	}
	return out
}

// isMarker reports whether a line is a YAML document start marker.
func isMarker(l []byte) bool {
	return bytes.HasPrefix(l, []byte("---")) && (len(l) == 3 || l[3] == '\n' || l[3] == '\r' || l[3] == ' ' || l[3] == '\t')
}

// shift moves every position of a tree down by lines.
func shift(n *yaml.Node, lines int) {
	if lines == 0 {
		return
	}
	n.Line += lines
	for _, c := range n.Content {
		shift(c, lines)
	}
}

// dupKey is a key that repeats an earlier key of its mapping, and the
// dotted path of its field.
type dupKey struct {
	key  *yaml.Node
	path string
}

// duplicateKeys returns the second and later keys of every mapping in the
// tree that repeat an earlier key. path is the tree's path, reused as the
// walk goes down: a path is written out only for a duplicate.
func duplicateKeys(n *yaml.Node, path []string, out []dupKey) []dupKey {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			for j := 0; j < i; j += 2 {
				if n.Content[j].Value == k.Value {
					out = append(out, dupKey{k, strings.Join(append(path, k.Value), ".")})
					break
				}
			}
			if v := n.Content[i+1]; len(v.Content) > 0 {
				out = duplicateKeys(v, append(path, k.Value), out)
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if len(c.Content) > 0 {
				out = duplicateKeys(c, append(path, strconv.Itoa(i)), out)
			}
		}
	}
	return out
}
