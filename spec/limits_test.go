package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLimits: files and documents over a limit are refused with a message
// naming the limit and what was found. Large files are sparse, so the
// test writes little.
func TestLimits(t *testing.T) {
	bigGBS := func(size int64) func(t *testing.T, repo string) {
		return func(t *testing.T, repo string) {
			sparse(t, filepath.Join(repo, "bitstreams", "big.gbs"), nil, size)
			writeFile(t, filepath.Join(repo, "bitstreams", "big.yaml"), []byte(
				"apiVersion: fpgaops/v1\nkind: Bitstream\nname: big\nfile: bitstreams/big.gbs\nsha256: "+strings.Repeat("ab", 32)+"\n"))
		}
	}
	setLimit := func(n string) func(t *testing.T, repo string) {
		return func(t *testing.T, repo string) {
			appendFile(t, filepath.Join(repo, "policy.yaml"), "limits: {maxBitstreamBytes: "+n+"}\n")
		}
	}
	labels := func(n int) func(t *testing.T, repo string) {
		return func(t *testing.T, repo string) {
			var b strings.Builder
			b.WriteString("apiVersion: fpgaops/v1\nkind: Node\nname: labelled\nfpgas: []\nlabels:\n")
			for i := range n {
				fmt.Fprintf(&b, "  l%d: v\n", i)
			}
			writeFile(t, filepath.Join(repo, "nodes", "labelled.yaml"), []byte(b.String()))
		}
	}
	cases := []struct {
		name  string
		opts  Options
		setup []func(t *testing.T, repo string)
		want  string
	}{
		{
			name:  "a GBS file over the default limit",
			setup: []func(*testing.T, string){bigGBS(300 << 20)},
			want:  "bitstreams/big.yaml:4:7: bitstream big: file bitstreams/big.gbs is 314572800 bytes (300 MiB), more than the limit of 268435456 bytes (256 MiB), the Policy's limits.maxBitstreamBytes",
		},
		{
			name:  "a GBS file over the Policy's limit",
			setup: []func(*testing.T, string){setLimit("4000")},
			want:  "bitstreams/bitstreams.yaml:7:7: bitstream vran-ldpc: file bitstreams/vran-ldpc-n3000.gbs is 4440 bytes, more than the limit of 4000 bytes, the Policy's limits.maxBitstreamBytes",
		},
		{
			name:  "a Policy raising the limit: the file is read",
			setup: []func(*testing.T, string){bigGBS(300 << 20), setLimit("536870912")},
			want:  "bitstreams/big.yaml:4:7: bitstream big: file bitstreams/big.gbs: not a GBS file: bad GUID 00000000000000000000000000000000",
		},
		{
			name: "a YAML file over the default limit",
			setup: []func(*testing.T, string){func(t *testing.T, repo string) {
				sparse(t, filepath.Join(repo, "nodes", "big.yaml"), []byte("apiVersion: fpgaops/v1\nkind: Node\nname: big\ndescription: "), 5<<20)
			}},
			want: "nodes/big.yaml: 5242880 bytes (5 MiB), more than the limit of 4194304 bytes (4 MiB) for a YAML file",
		},
		{
			// Nothing is said of references into the files not read.
			name: "YAML files over the loader's limit",
			opts: Options{MaxYAMLBytes: 450},
			want: "bindings/vran.yaml: 517 bytes, more than the limit of 450 bytes for a YAML file\n" +
				"bitstreams/bitstreams.yaml: 1252 bytes, more than the limit of 450 bytes for a YAML file\n" +
				"nodes/compute-01.yaml: 562 bytes, more than the limit of 450 bytes for a YAML file\n" +
				"policy.yaml: 581 bytes, more than the limit of 450 bytes for a YAML file",
		},
		{
			name:  "a plain document over the default number of values",
			setup: []func(*testing.T, string){labels(6000)},
			want:  "nodes/labelled.yaml:1:1: the document holds 12011 values, more than the limit of 10000 values per document",
		},
		{
			name:  "a document over the loader's number of values",
			opts:  Options{MaxDocumentValues: 40},
			setup: []func(*testing.T, string){labels(15)},
			want: "nodes/compute-01.yaml:2:1: the document holds 41 values, more than the limit of 40 values per document\n" +
				"nodes/labelled.yaml:1:1: the document holds 41 values, more than the limit of 40 values per document\n" +
				"policy.yaml:2:1: the document holds 43 values, more than the limit of 40 values per document",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := exampleRepo(t)
			for _, s := range c.setup {
				s(t, repo)
			}
			_, err := LoadWith(repo, c.opts)
			if err == nil || err.Error() != c.want {
				t.Errorf("got\n%v\nwant\n%s", err, c.want)
			}
		})
	}
}

// TestPolicyLimits: the Policy's limits are read, and without them the
// defaults apply.
func TestPolicyLimits(t *testing.T) {
	repo := exampleRepo(t)
	f, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Policy.MaxBitstreamBytes(); got != DefaultMaxBitstreamBytes {
		t.Errorf("default: %d", got)
	}
	appendFile(t, filepath.Join(repo, "policy.yaml"), "limits:\n  maxBitstreamBytes: 4294967296\n")
	if f, err = Load(repo); err != nil {
		t.Fatal(err)
	}
	if got := f.Policy.MaxBitstreamBytes(); got != 4<<30 || f.Policy.Limits.MaxBitstreamBytes != 4<<30 {
		t.Errorf("declared 4 GiB, got %d (%+v)", got, f.Policy.Limits)
	}
}

// TestTooLargeError: the error says both sizes to a program too.
func TestTooLargeError(t *testing.T) {
	repo := exampleRepo(t)
	r, err := OpenRepo(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.ReadBitstream(Bitstream{Name: "dma", File: "bitstreams/dma-afu-a10.gbs", SHA256: "x"}, 100)
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("%v is not a FileError", err)
	}
	if size, limit, ok := fe.TooLarge(); !ok || size != 2393 || limit != 100 {
		t.Errorf("TooLarge() = %d, %d, %v", size, limit, ok)
	}
}

// sparse writes head at the start of a file of size bytes, the rest a
// hole that takes no disk.
func sparse(t *testing.T, path string, head []byte, size int64) {
	t.Helper()
	writeFile(t, path, head)
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}
