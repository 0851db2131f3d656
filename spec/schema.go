package spec

import (
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	"gopkg.in/yaml.v3"

	"github.com/fpgaops/fpgaops/schema"
)

// validator checks single documents against the CUE schema. CUE values are
// cheap to check one small document at a time and slow as one huge value,
// so every document is unified with its kind's definition on its own. A
// validator is not shared between goroutines: each worker has its own
// context.
//
// Checking a document with CUE costs about 100µs, too much for a fleet of
// 50,000 documents, so the validator remembers what CUE has accepted and
// checks a document without CUE when it can (see quick): CUE has accepted
// a document of the same shape (the same fields, lists and labels), and
// every scalar satisfies its field's constraint. That is exact as long as
// no constraint relates two fields of a document, a rule schema/fleet.cue
// states; TestQuickAgreesWithCUE checks it on every test repository.
type validator struct {
	ctx  *cue.Context
	defs map[string]cue.Value // kind -> #Kind
	// noQuick turns the remembered shortcuts off (tests).
	noQuick bool

	// shapes maps kind+shape of an accepted document to the constraint of
	// each of its scalars.
	shapes      map[string][]*constraint
	shapeBuf    []byte
	leafBuf     []*yaml.Node
	constraints map[string]*constraint // kind+field pattern -> constraint
	leaves      map[string]bool        // constraint+scalar -> accepted
}

// constraint is the schema's constraint on one scalar field.
type constraint struct {
	id string
	v  cue.Value
	// re is set when the constraint is one regular expression, which Go
	// matches the way CUE does (CUE's =~ is Go's regexp).
	re *regexp.Regexp
}

// newValidator compiles the embedded schema.
func newValidator() (*validator, error) {
	ctx := cuecontext.New()
	files, err := fs.Glob(schema.FS, "*.cue")
	if err != nil {
		return nil, err
	}
	// The schema is one package in several files: join their declarations
	// into one file so that definitions can refer to each other.
	merged := &ast.File{}
	for _, name := range files {
		src, err := fs.ReadFile(schema.FS, name)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile("schema/"+name, src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("schema: %w", err)
		}
		for _, d := range f.Decls {
			if _, ok := d.(*ast.Package); ok {
				continue
			}
			merged.Decls = append(merged.Decls, d)
		}
	}
	v := ctx.BuildFile(merged)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	val := &validator{
		ctx:         ctx,
		defs:        map[string]cue.Value{},
		shapes:      map[string][]*constraint{},
		constraints: map[string]*constraint{},
		leaves:      map[string]bool{},
	}
	for _, kind := range []string{KindNode, KindBitstream, KindBinding, KindPolicy} {
		d := v.LookupPath(cue.MakePath(cue.Def(kind)))
		if !d.Exists() {
			return nil, fmt.Errorf("schema: no definition #%s", kind)
		}
		val.defs[kind] = d
	}
	return val, nil
}

// fieldError is a schema violation at a node of the document's tree.
type fieldError struct {
	node *yaml.Node
	// path is the field's path in the document: the wrong field, or the
	// missing one.
	path []string
	msg  string
	// unknown: the field is not in the schema, which takes nothing away
	// from the rest of the document.
	unknown bool
}

// maxPasses bounds how often a document is re-checked after removing the
// fields already found wrong; CUE reports some errors only once others
// are gone (a conflict hides a missing field).
const maxPasses = 4

// validate checks one document, a mapping, against the definition of kind.
func (v *validator) validate(kind string, doc *yaml.Node) []fieldError {
	if !v.noQuick && v.quick(kind, doc) {
		return nil
	}
	errs := v.full(kind, doc)
	if len(errs) == 0 && !v.noQuick {
		v.remember(kind, doc)
	}
	return errs
}

// full checks a document with CUE and describes every error.
func (v *validator) full(kind string, doc *yaml.Node) []fieldError {
	def := v.defs[kind]
	skip := map[string]bool{}
	var out []fieldError
	for range maxPasses {
		expr := toCUE(doc, "", skip)
		u := def.Unify(def.Context().BuildExpr(expr))
		err := u.Validate(cue.Concrete(true))
		if err == nil {
			break
		}
		found := false
		for _, e := range cueerrors.Errors(err) {
			path := e.Path()
			if len(path) > 0 && strings.HasPrefix(path[0], "#") {
				path = path[1:]
			}
			key := strings.Join(path, ".")
			if skip[key] {
				continue
			}
			format, args := e.Msg()
			raw := fmt.Sprintf(format, args...)
			// A failed disjunction is followed by one error per branch at
			// the same path: the first one describes them all.
			skip[key] = true
			found = true
			fe := describe(u, doc, path, raw)
			fe.path = path
			out = append(out, fe)
		}
		if !found {
			break
		}
	}
	return out
}

// describe turns a CUE error into an error at the YAML node it is about.
func describe(u cue.Value, doc *yaml.Node, path []string, raw string) fieldError {
	field := displayPath(path)
	node, parent := lookupYAML(doc, path)
	switch {
	case strings.Contains(raw, "field not allowed"):
		if node != nil && parent != nil {
			// Point at the key, where the reader's eye is.
			node = keyNode(parent, path[len(path)-1])
		}
		return fieldError{node: orDoc(node, doc), msg: fmt.Sprintf("unknown field %s", field), unknown: true}
	case strings.Contains(raw, "required but not present"):
		at := parent
		if at == nil {
			at = doc
		}
		return fieldError{node: at, msg: fmt.Sprintf("missing required field %s", field)}
	}
	attr := u.LookupPath(cuePath(path)).Attribute("want")
	want, err := attr.String(0)
	if _, index := strconv.Atoi(path[len(path)-1]); err != nil && index == nil {
		// A list's elements say what they accept in the list's @wantEach.
		each := u.LookupPath(cuePath(path[:len(path)-1])).Attribute("wantEach")
		want, err = each.String(0)
	}
	if err == nil && node != nil {
		return fieldError{node: node, msg: fmt.Sprintf("%s: want %s, got %s", field, want, gotText(node))}
	}
	return fieldError{node: orDoc(node, doc), msg: fmt.Sprintf("%s: %s", field, raw)}
}

func orDoc(n, doc *yaml.Node) *yaml.Node {
	if n == nil {
		return doc
	}
	return n
}

// gotText shows a YAML value as the user wrote it.
func gotText(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return gotText(n.Alias)
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!null":
		return "null"
	}
	return n.Value
}

// displayPath writes a CUE path the way a YAML reader sees it:
// fpgas[0].board.
func displayPath(path []string) string {
	var b strings.Builder
	for _, p := range path {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func cuePath(path []string) cue.Path {
	sels := make([]cue.Selector, len(path))
	for i, p := range path {
		if n, err := strconv.Atoi(p); err == nil {
			sels[i] = cue.Index(n)
		} else {
			sels[i] = cue.Str(p)
		}
	}
	return cue.MakePath(sels...)
}

// lookupYAML finds the value at path and the mapping or list holding it.
func lookupYAML(doc *yaml.Node, path []string) (node, parent *yaml.Node) {
	node = doc
	for _, p := range path {
		for node != nil && node.Kind == yaml.AliasNode {
			node = node.Alias
		}
		if node == nil {
			return nil, parent
		}
		parent = node
		switch node.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(node.Content); i += 2 {
				if node.Content[i].Value == p {
					next = node.Content[i+1]
				}
			}
			node = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(node.Content) {
				return nil, parent
			}
			node = node.Content[i]
		default:
			return nil, parent
		}
	}
	return node, parent
}

// keyNode returns the key node of a mapping's field.
func keyNode(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

// toCUE builds a CUE expression from a YAML value, leaving out the fields
// whose dotted paths are in skip.
func toCUE(n *yaml.Node, path string, skip map[string]bool) ast.Expr {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		s := &ast.StructLit{Elts: make([]ast.Decl, 0, len(n.Content)/2)}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if slices.ContainsFunc(n.Content[:i], func(prev *yaml.Node) bool { return prev.Value == k }) {
				continue // a repeated key, reported as such
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			if skip[p] {
				continue
			}
			s.Elts = append(s.Elts, &ast.Field{Label: ast.NewString(k), Value: toCUE(n.Content[i+1], p, skip)})
		}
		return s
	case yaml.SequenceNode:
		l := &ast.ListLit{Elts: make([]ast.Expr, 0, len(n.Content))}
		for i, c := range n.Content {
			p := strconv.Itoa(i)
			if path != "" {
				p = path + "." + p
			}
			if skip[p] {
				// Keep the index of the following elements.
				l.Elts = append(l.Elts, ast.NewIdent("_"))
				continue
			}
			l.Elts = append(l.Elts, toCUE(c, p, skip))
		}
		return l
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return toCUE(n.Content[0], path, skip)
		}
		return ast.NewNull()
	}
	switch n.ShortTag() {
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return ast.NewLit(token.INT, strconv.FormatInt(i, 10))
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return ast.NewLit(token.FLOAT, strconv.FormatFloat(f, 'g', -1, 64))
		}
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return ast.NewBool(b)
		}
	case "!!null":
		return ast.NewNull()
	}
	return ast.NewString(n.Value)
}

// shapeOf appends the document's shape (its keys, lists and where scalars
// are) to buf, and its scalars, in order, to leaves.
func shapeOf(buf []byte, n *yaml.Node, leaves []*yaml.Node) ([]byte, []*yaml.Node) {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		buf = append(buf, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			buf = append(buf, n.Content[i].Value...)
			buf = append(buf, 0)
			buf, leaves = shapeOf(buf, n.Content[i+1], leaves)
		}
		buf = append(buf, '}')
	case yaml.SequenceNode:
		buf = append(buf, '[')
		for _, c := range n.Content {
			buf, leaves = shapeOf(buf, c, leaves)
		}
		buf = append(buf, ']')
	default:
		buf = append(buf, 's')
		leaves = append(leaves, n)
	}
	return buf, leaves
}

// leafPatterns lists the field patterns of the document's scalars in the
// order shapeOf finds them: paths with list indices replaced by "*".
func leafPatterns(n *yaml.Node, pattern string, out []string) []string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if pattern != "" {
				p = pattern + "." + p
			}
			out = leafPatterns(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			out = leafPatterns(c, pattern+".*", out)
		}
	default:
		out = append(out, pattern)
	}
	return out
}

// quick reports whether the document is valid by what CUE has accepted
// before. False means "not known", not "invalid".
func (v *validator) quick(kind string, doc *yaml.Node) bool {
	v.shapeBuf, v.leafBuf = shapeOf(append(v.shapeBuf[:0], kind...), doc, v.leafBuf[:0])
	cs, ok := v.shapes[string(v.shapeBuf)]
	if !ok {
		return false
	}
	for i, l := range v.leafBuf {
		if cs[i] == nil || !v.accepts(cs[i], l) {
			return false
		}
	}
	return true
}

// remember records a document CUE accepted: its shape, with the
// constraint of each scalar, and its scalars.
func (v *validator) remember(kind string, doc *yaml.Node) {
	v.shapeBuf, v.leafBuf = shapeOf(append(v.shapeBuf[:0], kind...), doc, v.leafBuf[:0])
	patterns := leafPatterns(doc, "", nil)
	cs := make([]*constraint, len(patterns))
	for i, p := range patterns {
		cs[i] = v.constraint(kind, p)
		if cs[i] != nil && cs[i].re == nil {
			v.leaves[leafKey(cs[i], v.leafBuf[i])] = true
		}
	}
	v.shapes[string(v.shapeBuf)] = cs
}

func leafKey(c *constraint, n *yaml.Node) string {
	return c.id + "\x00" + n.ShortTag() + "\x00" + n.Value
}

// accepts reports whether a scalar satisfies a field's constraint.
func (v *validator) accepts(c *constraint, n *yaml.Node) bool {
	if c.re != nil && n.ShortTag() == "!!str" {
		return c.re.MatchString(n.Value)
	}
	key := leafKey(c, n)
	ok, seen := v.leaves[key]
	if !seen {
		ok = c.v.Unify(v.ctx.BuildExpr(toCUE(n, "", nil))).Validate(cue.Concrete(true)) == nil
		v.leaves[key] = ok
	}
	return ok
}

// constraint finds the schema's constraint on a field pattern, or nil.
func (v *validator) constraint(kind, pattern string) *constraint {
	id := kind + "." + pattern
	if c, ok := v.constraints[id]; ok {
		return c
	}
	c := v.lookupConstraint(v.defs[kind], pattern)
	if c != nil {
		c.id = id
	}
	v.constraints[id] = c
	return c
}

func (v *validator) lookupConstraint(cur cue.Value, pattern string) *constraint {
	for _, seg := range strings.Split(pattern, ".") {
		if seg == "*" {
			e, ok := cur.Eval().Elem()
			if !ok {
				return nil
			}
			cur = e
			continue
		}
		next := cur.LookupPath(cue.MakePath(cue.Str(seg).Required()))
		if !next.Exists() {
			next = cur.LookupPath(cue.MakePath(cue.Str(seg).Optional()))
		}
		if !next.Exists() {
			next = cur.LookupPath(cue.MakePath(cue.Str(seg)))
		}
		if !next.Exists() {
			// A field matched by a pattern such as labels' [=~"..."]:
			// let CUE apply the pattern to a field of that name.
			probe := &ast.StructLit{Elts: []ast.Decl{&ast.Field{Label: ast.NewString(seg), Value: ast.NewIdent("_")}}}
			next = cur.Unify(v.ctx.BuildExpr(probe)).LookupPath(cue.MakePath(cue.Str(seg)))
		}
		if !next.Exists() {
			return nil
		}
		cur = next
	}
	c := &constraint{v: cur}
	if op, args := cur.Eval().Expr(); op == cue.RegexMatchOp && len(args) == 1 {
		if s, err := args[0].String(); err == nil {
			c.re, _ = regexp.Compile(s)
		}
	}
	return c
}

// kinds lists the document kinds in the order error messages name them.
var kinds = []string{KindNode, KindBitstream, KindBinding, KindPolicy}

func knownKind(k string) bool { return slices.Contains(kinds, k) }
