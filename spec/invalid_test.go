package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"
	"gopkg.in/yaml.v3"

	"github.com/fpgaops/fpgaops/bitstream"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/invalid/*.txtar")

// TestInvalid loads each repository of testdata/invalid and compares every
// error it reports with the archive's want section. A case is a txtar
// archive of the repository's files plus:
//
//   - "NAME.gbs" holding JSON: the GBS metadata; the file written is a GBS
//     image of it with a short payload (bitstream.Build);
//   - "NAME.hex" holding hex digits (spaces and newlines ignored): the raw
//     bytes of NAME, for broken images and bytes a text file cannot hold;
//   - ${sha256:PATH} anywhere in a YAML file: the digest of PATH as written;
//   - "want": the loader's output, one error per line.
func TestInvalid(t *testing.T) {
	cases, err := filepath.Glob("testdata/invalid/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d invalid repositories in testdata/invalid", len(cases))
	}
	for _, file := range cases {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := writeRepo(t, ar)
			for _, quick := range []bool{true, false} {
				got := loadErrors(t, dir, loadOptions{noQuick: !quick})
				want := section(ar, "want")
				if *update && quick {
					setSection(ar, "want", got)
					if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if got != want {
					t.Errorf("quick=%v: errors differ\n--- got\n%s--- want\n%s", quick, got, want)
				}
			}
		})
	}
}

// loadErrors loads dir and returns its errors, one per line.
func loadErrors(t *testing.T, dir string, opts loadOptions) string {
	t.Helper()
	r, err := OpenRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.load(opts)
	if err == nil {
		t.Fatalf("loaded %d nodes and %d bindings without an error", len(f.Nodes), len(f.Bindings))
	}
	if _, ok := err.(ErrorList); !ok {
		t.Fatalf("error is a %T, not an ErrorList: %v", err, err)
	}
	return err.Error() + "\n"
}

var digestRef = regexp.MustCompile(`\$\{sha256:([^}]+)\}`)

// writeRepo writes an archive's files (all but want) into a new directory.
func writeRepo(t *testing.T, ar *txtar.Archive) string {
	t.Helper()
	dir := t.TempDir()
	written := map[string][]byte{}
	var yamls []txtar.File
	for _, f := range ar.Files {
		data := f.Data
		name := f.Name
		switch {
		case name == "want":
			continue
		case strings.HasSuffix(name, ".hex"):
			name = strings.TrimSuffix(name, ".hex")
			raw, err := hex.DecodeString(strings.Join(strings.Fields(string(data)), ""))
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			data = raw
		case strings.HasSuffix(name, ".gbs"):
			var md bitstream.Metadata
			if err := json.Unmarshal(data, &md); err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			img, err := bitstream.Build(md, []byte("payload of "+name))
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			data = img
		case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
			yamls = append(yamls, txtar.File{Name: name, Data: data})
			continue
		}
		written[name] = data
		writeFile(t, filepath.Join(dir, name), data)
	}
	for _, f := range yamls {
		data := digestRef.ReplaceAllFunc(f.Data, func(m []byte) []byte {
			p := string(digestRef.FindSubmatch(m)[1])
			content, ok := written[p]
			if !ok {
				t.Fatalf("%s: ${sha256:%s}: no such file in the archive", f.Name, p)
			}
			sum := sha256.Sum256(content)
			return []byte(hex.EncodeToString(sum[:]))
		})
		writeFile(t, filepath.Join(dir, f.Name), data)
	}
	return dir
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func section(ar *txtar.Archive, name string) string {
	for _, f := range ar.Files {
		if f.Name == name {
			return string(f.Data)
		}
	}
	return ""
}

func setSection(ar *txtar.Archive, name, data string) {
	for i, f := range ar.Files {
		if f.Name == name {
			ar.Files[i].Data = []byte(data)
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: []byte(data)})
}

// TestQuickAgreesWithCUE checks the validator's shortcut against CUE on
// every document of the test repositories: once CUE has accepted all the
// valid documents, the shortcut must not accept one CUE rejects.
func TestQuickAgreesWithCUE(t *testing.T) {
	cases, _ := filepath.Glob("testdata/invalid/*.txtar")
	type doc struct {
		where string
		kind  string
		root  *yaml.Node
	}
	var docs []doc
	collect := func(where string, data []byte) {
		for _, c := range splitDocuments(data) {
			n, kind, ok := parseForTest(c.text)
			if !ok {
				continue
			}
			if _, expanded := documentSize(n, DefaultMaxDocumentValues); expanded <= DefaultMaxDocumentValues {
				docs = append(docs, doc{where, kind, n})
			}
		}
	}
	for _, file := range cases {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ar.Files {
			if strings.HasSuffix(f.Name, ".yaml") {
				collect(filepath.Base(file)+"/"+f.Name, f.Data)
			}
		}
	}
	example, err := filepath.Glob("../examples/fleet/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	example = append(example, "../examples/fleet/policy.yaml")
	for _, p := range example {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		collect(p, data)
	}
	v, err := newValidator()
	if err != nil {
		t.Fatal(err)
	}
	var bad []doc
	for _, d := range docs {
		if len(v.full(d.kind, d.root)) == 0 {
			v.remember(d.kind, d.root)
		} else {
			bad = append(bad, d)
		}
	}
	if len(bad) < 20 {
		t.Fatalf("only %d documents the schema rejects", len(bad))
	}
	for _, d := range bad {
		if v.quick(d.kind, d.root) {
			t.Errorf("%s: the shortcut accepts a %s that CUE rejects", d.where, d.kind)
		}
	}
	var again bytes.Buffer
	for _, d := range docs {
		if len(v.full(d.kind, d.root)) == 0 && !v.quick(d.kind, d.root) {
			again.WriteString(d.where + " ")
		}
	}
	if again.Len() > 0 {
		t.Errorf("the shortcut does not know documents CUE accepted: %s", again.String())
	}
}

// parseForTest parses one document and returns its mapping and kind, or
// false when it is no document of a known kind.
func parseForTest(text []byte) (*yaml.Node, string, bool) {
	var n yaml.Node
	if yaml.Unmarshal(text, &n) != nil || len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
		return nil, "", false
	}
	root := n.Content[0]
	k, _ := lookupYAML(root, []string{"kind"})
	if k == nil || !knownKind(k.Value) {
		return nil, "", false
	}
	return root, k.Value, true
}
