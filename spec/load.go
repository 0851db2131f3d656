package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"gopkg.in/yaml.v3"
)

// Load reads every *.yaml and *.yml file under dir (hidden directories such
// as .git are skipped), checks each document against the schema and all of
// them against each other, and returns the fleet. On failure the error is
// an ErrorList holding every mistake, with files relative to dir.
//
// Bitstream files, whose paths the documents name, are opened through an
// os.Root, so that neither ".." nor a symlink leads the loader out of the
// repository. YAML files are found by walking the tree, which does not
// follow symlinks (a YAML file that is a symlink is not read), and read
// directly, which is faster.
func Load(dir string) (*Fleet, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	defer root.Close()
	f, err := load(os.DirFS(dir), root.FS(), loadOptions{})
	if f != nil {
		f.Root = dir
	}
	return f, err
}

// LoadFS is Load on a file system whose root is the repository. Whether a
// symlink in fsys may lead outside the repository is up to fsys.
func LoadFS(fsys fs.FS) (*Fleet, error) { return load(fsys, fsys, loadOptions{}) }

// loadOptions tune the loader for tests.
type loadOptions struct {
	// noQuick checks every document with CUE.
	noQuick bool
	// validators, when set, are used instead of compiling the schema: one
	// per worker.
	validators []*validator
}

// load reads the YAML files of fsys and the bitstream files of files.
func load(fsys, files fs.FS, opts loadOptions) (*Fleet, error) {
	names, err := yamlFiles(fsys)
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	if len(names) == 0 {
		// Most likely the wrong directory: an empty fleet would plan to
		// prune everything.
		return nil, ErrorList{{Msg: "no fleet documents: the repository holds no .yaml or .yml file"}}
	}
	results := make([]fileResult, len(names))
	workers := min(runtime.GOMAXPROCS(0), max(len(names), 1))
	if len(opts.validators) > 0 {
		workers = len(opts.validators)
	}
	var next atomic.Int64
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			// CUE values are not shared between goroutines: each worker
			// compiles the schema into its own context.
			var v *validator
			if len(opts.validators) > 0 {
				v = opts.validators[w]
			} else {
				var err error
				if v, err = newValidator(); err != nil {
					return err
				}
			}
			v.noQuick = opts.noQuick
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return nil
				}
				results[i] = loadFile(fsys, files, names[i], v)
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var errs ErrorList
	n := 0
	for _, r := range results {
		errs = append(errs, r.errs...)
		n += len(r.docs)
	}
	all := make([]*document, 0, n)
	for _, r := range results {
		all = append(all, r.docs...)
	}
	fleet, cerrs := assemble(all)
	errs = append(errs, cerrs...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return fleet, nil
}

// yamlFiles lists the repository's YAML files in lexical order.
func yamlFiles(fsys fs.FS) ([]string, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(p); (ext == ".yaml" || ext == ".yml") && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	return files, err
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

	// broken documents failed the schema: their names count as declared,
	// so that references to them do not cascade into more errors, but
	// they are not checked further.
	broken bool

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

// savedPos is a position kept after the tree is dropped.
type savedPos struct {
	path string
	pos  Pos
}

// release drops the document's tree, keeping the positions the checks
// across documents cite. A fleet's trees are most of the loader's memory,
// and the garbage collector's work.
func (d *document) release() {
	var paths [][]string
	switch d.kind {
	case KindBinding:
		paths = [][]string{{"name"}, {"node"}, {"fpga"}, {"function"}, {"vm"}, {"bitstream"}}
	case KindNode:
		paths = [][]string{{"name"}}
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

type fileResult struct {
	docs []*document
	errs ErrorList
}

// loadFile parses, checks and decodes every document of one file.
func loadFile(fsys, files fs.FS, file string, v *validator) fileResult {
	var r fileResult
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		r.errs = append(r.errs, Error{Pos: Pos{File: file}, Msg: fmt.Sprintf("read: %v", err)})
		return r
	}
	trees, errs := parseDocuments(file, data)
	r.errs = append(r.errs, errs...)
	for _, n := range trees {
		root := n.Content[0]
		errf := func(at *yaml.Node, format string, args ...any) {
			r.errs = append(r.errs, Error{Pos: Pos{File: file, Line: at.Line, Col: at.Column}, Msg: fmt.Sprintf(format, args...)})
		}
		if root.Kind != yaml.MappingNode {
			errf(root, "a document must be a mapping with apiVersion, kind and name, got %s", gotText(root))
			continue
		}
		if tooBig(root, maxDocumentValues) {
			errf(root, "the document holds more than %d values once its aliases are expanded", maxDocumentValues)
			continue
		}
		dups := duplicateKeys(root, nil)
		for _, k := range dups {
			errf(k, "duplicate field %s", k.Value)
		}
		kindNode, _ := lookupYAML(root, []string{"kind"})
		switch {
		case kindNode == nil:
			errf(root, "missing required field kind (one of %s)", strings.Join(kinds, ", "))
			continue
		case kindNode.Kind != yaml.ScalarNode || !knownKind(kindNode.Value):
			errf(kindNode, "kind: want one of %s, got %s", strings.Join(kinds, ", "), gotText(kindNode))
			continue
		}
		d := &document{file: file, kind: kindNode.Value, root: root}
		ferrs := v.validate(d.kind, root)
		who := ""
		if n, _ := lookupYAML(root, []string{"name"}); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
			who = strings.ToLower(d.kind) + " " + n.Value + ": "
		}
		for _, fe := range ferrs {
			errf(fe.node, "%s%s", who, fe.msg)
		}
		if len(ferrs) > 0 || len(dups) > 0 {
			d.broken = true
			r.docs = append(r.docs, d)
			continue
		}
		decode(d)
		switch {
		case d.node != nil:
			r.errs = append(r.errs, checkNode(d)...)
		case d.bitstream != nil:
			r.errs = append(r.errs, checkBitstream(files, d)...)
		case d.policy != nil:
			r.errs = append(r.errs, checkPolicy(d)...)
		}
		d.release()
		r.docs = append(r.docs, d)
	}
	return r
}

// parseDocuments parses a file's documents. A file is parsed in one go;
// only when that fails is it cut into documents, so that a syntax error in
// one document does not hide the documents after it. Documents holding
// only comments are left out.
func parseDocuments(file string, data []byte) ([]*yaml.Node, ErrorList) {
	var trees []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		n := new(yaml.Node)
		err := dec.Decode(n)
		if errors.Is(err, io.EOF) {
			return trees, nil
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
	for _, c := range splitDocuments(data) {
		n := new(yaml.Node)
		if err := yaml.Unmarshal(c.text, n); err != nil {
			errs = append(errs, syntaxError(file, c, err))
			continue
		}
		if len(n.Content) > 0 {
			shift(n, c.line-1)
			trees = append(trees, n)
		}
	}
	return trees, errs
}

// maxDocumentValues bounds the size of one document with its aliases
// expanded. A node with 16 cards is about 100 values.
const maxDocumentValues = 10000

// tooBig reports whether a document holds more than max values once its
// aliases are expanded: a few lines of anchors and aliases can stand for
// billions of values, which checking the document would expand.
func tooBig(n *yaml.Node, max int) bool {
	left := max
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if left--; left < 0 {
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
	return !walk(n)
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

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places a yaml.v3 error. yaml.v3 reports a line but no column;
// the column given is the line's first non-blank character.
func syntaxError(file string, c chunk, err error) Error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if line == 0 {
		line = 1
	}
	col := 1
	lines := bytes.Split(c.text, []byte("\n"))
	if line <= len(lines) {
		col = len(lines[line-1]) - len(bytes.TrimLeft(lines[line-1], " \t")) + 1
	}
	return Error{Pos: Pos{File: file, Line: c.line + line - 1, Col: col}, Msg: "YAML syntax: " + msg}
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

// duplicateKeys returns the second and later keys of every mapping in the
// tree that repeat an earlier key.
func duplicateKeys(n *yaml.Node, out []*yaml.Node) []*yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 2; i < len(n.Content); i += 2 {
			for j := 0; j < i; j += 2 {
				if n.Content[i].Value == n.Content[j].Value {
					out = append(out, n.Content[i])
					break
				}
			}
		}
	}
	for _, c := range n.Content {
		out = duplicateKeys(c, out)
	}
	return out
}
