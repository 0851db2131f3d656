//go:build linux

package spec_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestValidateMemory runs `fpgaops validate` on repositories holding a
// 2 GiB GBS file and a 200 MiB YAML file (sparse: they take no disk) and
// reads the command's peak resident memory from the kernel: both are
// refused, by their limits, with the command staying under 100 MB.
func TestValidateMemory(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fpgaops")
	build := exec.Command("go", "build", "-o", bin, "github.com/fpgaops/fpgaops/cmd/fpgaops")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const limit = 100 << 20
	cases := []struct {
		name  string
		files map[string]string
		big   string // made size bytes long, sparse
		size  int64
		want  string
	}{
		{
			name: "a 2 GiB GBS file",
			files: map[string]string{"bitstreams/big.yaml": "apiVersion: fpgaops/v1\nkind: Bitstream\nname: big\n" +
				"file: bitstreams/big.gbs\nsha256: " + strings.Repeat("ab", 32) + "\n"},
			big:  "bitstreams/big.gbs",
			size: 2 << 30,
			want: "bitstreams/big.yaml:4:7: bitstream big: file bitstreams/big.gbs is 2147483648 bytes (2 GiB), more than the limit of 268435456 bytes (256 MiB), the Policy's limits.maxBitstreamBytes\n",
		},
		{
			name:  "a 200 MiB YAML file",
			files: map[string]string{"nodes/big.yaml": "apiVersion: fpgaops/v1\nkind: Node\nname: big\ndescription: "},
			big:   "nodes/big.yaml",
			size:  200 << 20,
			want:  "nodes/big.yaml: 209715200 bytes (200 MiB), more than the limit of 4194304 bytes (4 MiB) for a YAML file\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := t.TempDir()
			for name, text := range c.files {
				write(t, filepath.Join(repo, name), text)
			}
			write(t, filepath.Join(repo, "nodes", "n1.yaml"), "apiVersion: fpgaops/v1\nkind: Node\nname: n1\nfpgas: []\n")
			big, err := os.OpenFile(filepath.Join(repo, c.big), os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if err := big.Truncate(c.size); err != nil {
				t.Fatal(err)
			}
			if err := big.Close(); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "validate", repo)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
			}
			if want := c.want + repo + ": 1 error\n"; stderr.String() != want {
				t.Errorf("stderr\n%s\nwant\n%s", stderr.String(), want)
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
			t.Logf("peak resident memory %.1f MB", float64(rss)/1e6)
			if rss > limit {
				t.Errorf("peak resident memory %d bytes, more than %d", rss, limit)
			}
		})
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
