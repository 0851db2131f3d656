//go:build unix

package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadSymlinks: symlinks are followed while they stay inside the
// repository; one that leaves it, dangles or loops is an error naming the
// file, never skipped, and only regular files are read. In each case
// $OUT is a directory outside the repository.
func TestLoadSymlinks(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, repo, out string)
		// want is the load's errors, one per line; "" means it loads
		// with bindings bindings.
		want     string
		bindings int
	}{
		{
			name: "a binding file moved behind a symlink is loaded",
			setup: func(t *testing.T, repo, _ string) {
				move(t, filepath.Join(repo, "bindings", "vran.yaml"), filepath.Join(repo, ".shared", "vran.yaml"))
				symlink(t, "../.shared/vran.yaml", filepath.Join(repo, "bindings", "vran.yaml"))
			},
			bindings: 5,
		},
		{
			name: "a folder behind a symlink is walked",
			setup: func(t *testing.T, repo, _ string) {
				move(t, filepath.Join(repo, "bindings"), filepath.Join(repo, ".bindings"))
				symlink(t, ".bindings", filepath.Join(repo, "bindings"))
			},
			bindings: 5,
		},
		{
			name: "a file found twice is read once",
			setup: func(t *testing.T, repo, _ string) {
				symlink(t, "vran.yaml", filepath.Join(repo, "bindings", "also-vran.yaml"))
				symlink(t, "bindings", filepath.Join(repo, "more-bindings"))
			},
			bindings: 5,
		},
		{
			name: "a GBS file behind a symlink inside is read",
			setup: func(t *testing.T, repo, _ string) {
				move(t, filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs"), filepath.Join(repo, "images", "dma.gbs"))
				symlink(t, "../images/dma.gbs", filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs"))
			},
			bindings: 5,
		},
		{
			name: "a YAML symlink leading outside",
			setup: func(t *testing.T, repo, out string) {
				move(t, filepath.Join(repo, "bindings", "vran.yaml"), filepath.Join(out, "vran.yaml"))
				symlink(t, filepath.Join(out, "vran.yaml"), filepath.Join(repo, "bindings", "vran.yaml"))
			},
			want: "bindings/vran.yaml: a symlink to $OUT/vran.yaml, leading outside the repository; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a relative YAML symlink climbing out",
			setup: func(t *testing.T, repo, _ string) {
				symlink(t, "../../../../../../../../etc/hostname", filepath.Join(repo, "nodes", "host.yaml"))
			},
			want: "nodes/host.yaml: a symlink to ../../../../../../../../etc/hostname, leading outside the repository; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a YAML symlink to /dev/zero",
			setup: func(t *testing.T, repo, _ string) {
				symlink(t, "/dev/zero", filepath.Join(repo, "nodes", "zero.yaml"))
			},
			want: "nodes/zero.yaml: a symlink to /dev/zero, leading outside the repository; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a dangling YAML symlink",
			setup: func(t *testing.T, repo, _ string) {
				symlink(t, "compute-09.yaml", filepath.Join(repo, "nodes", "compute-04.yaml"))
			},
			want: "nodes/compute-04.yaml: a symlink to compute-09.yaml, which does not exist; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a symlink loop",
			setup: func(t *testing.T, repo, _ string) {
				symlink(t, "b.yaml", filepath.Join(repo, "nodes", "a.yaml"))
				symlink(t, "a.yaml", filepath.Join(repo, "nodes", "b.yaml"))
			},
			want: "nodes/a.yaml: on a symlink loop; list it in .fpgaopsignore if it is not part of the fleet\n" +
				"nodes/b.yaml: on a symlink loop; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a folder symlink to a folder above it",
			setup: func(t *testing.T, repo, _ string) {
				symlink(t, "..", filepath.Join(repo, "nodes", "all"))
			},
			want: "nodes/all: a symlink to a folder it is in, a loop; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a folder symlink leading outside",
			setup: func(t *testing.T, repo, out string) {
				symlink(t, out, filepath.Join(repo, "shared"))
			},
			want: "shared: a symlink to $OUT, leading outside the repository; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "an ignored symlink leading outside",
			setup: func(t *testing.T, repo, out string) {
				symlink(t, out, filepath.Join(repo, "shared"))
				writeFile(t, filepath.Join(repo, IgnoreFile), []byte("/shared\n"))
			},
			bindings: 5,
		},
		{
			name: "a symlink that is not a fleet file is left alone",
			setup: func(t *testing.T, repo, out string) {
				symlink(t, filepath.Join(out, "README.md"), filepath.Join(repo, "LICENSE.md"))
			},
			bindings: 5,
		},
		{
			name: "a FIFO named like YAML",
			setup: func(t *testing.T, repo, _ string) {
				mkfifo(t, filepath.Join(repo, "nodes", "pipe.yaml"))
			},
			want: "nodes/pipe.yaml: a named pipe, not a regular file; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a YAML symlink to a FIFO inside",
			setup: func(t *testing.T, repo, _ string) {
				mkfifo(t, filepath.Join(repo, ".pipes", "pipe"))
				symlink(t, "../.pipes/pipe", filepath.Join(repo, "nodes", "pipe.yaml"))
			},
			want: "nodes/pipe.yaml: a named pipe, not a regular file; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name: "a GBS symlink to /etc/shadow",
			setup: func(t *testing.T, repo, _ string) {
				replaceWithSymlink(t, "/etc/shadow", filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs"))
			},
			want: "bitstreams/bitstreams.yaml:31:7: bitstream dma-afu: file bitstreams/dma-afu-a10.gbs is a symlink to /etc/shadow, leading outside the repository",
		},
		{
			name: "a GBS symlink to a sound image outside",
			setup: func(t *testing.T, repo, out string) {
				move(t, filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs"), filepath.Join(out, "dma.gbs"))
				symlink(t, filepath.Join(out, "dma.gbs"), filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs"))
			},
			want: "bitstreams/bitstreams.yaml:31:7: bitstream dma-afu: file bitstreams/dma-afu-a10.gbs is a symlink to $OUT/dma.gbs, leading outside the repository",
		},
		{
			name: "a GBS symlink to /dev/zero",
			setup: func(t *testing.T, repo, _ string) {
				replaceWithSymlink(t, "/dev/zero", filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs"))
			},
			want: "bitstreams/bitstreams.yaml:31:7: bitstream dma-afu: file bitstreams/dma-afu-a10.gbs is a symlink to /dev/zero, leading outside the repository",
		},
		{
			name: "a GBS file that is a FIFO",
			setup: func(t *testing.T, repo, _ string) {
				gbs := filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs")
				if err := os.Remove(gbs); err != nil {
					t.Fatal(err)
				}
				mkfifo(t, gbs)
			},
			want: "bitstreams/bitstreams.yaml:31:7: bitstream dma-afu: file bitstreams/dma-afu-a10.gbs is a named pipe, not a regular file",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo, out := exampleRepo(t), t.TempDir()
			c.setup(t, repo, out)
			f, err := Load(repo)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(f.Bindings) != c.bindings {
					t.Errorf("%d bindings, want %d", len(f.Bindings), c.bindings)
				}
				return
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("got %v, want an ErrorList", err)
			}
			if got, want := list.Error(), strings.ReplaceAll(c.want, "$OUT", out); got != want {
				t.Errorf("errors differ\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

// TestReadBitstream reads images the way the executor does: through the
// repository's root, bounded, and checked against their digest.
func TestReadBitstream(t *testing.T) {
	repo := exampleRepo(t)
	out := t.TempDir()
	image, err := os.ReadFile(filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(image)
	digest := hex.EncodeToString(sum[:])
	writeFile(t, filepath.Join(out, "dma.gbs"), image)
	symlink(t, filepath.Join(out, "dma.gbs"), filepath.Join(repo, "bitstreams", "outside.gbs"))
	symlink(t, "/dev/zero", filepath.Join(repo, "bitstreams", "zero.gbs"))
	symlink(t, "dma-afu-a10.gbs", filepath.Join(repo, "bitstreams", "inside.gbs"))
	mkfifo(t, filepath.Join(repo, "bitstreams", "pipe.gbs"))

	r, err := OpenRepo(repo)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cases := []struct {
		name    string
		b       Bitstream
		max     int64
		want    string // the error, or "" for the image
		wantErr error
	}{
		{name: "a file", b: Bitstream{Name: "dma", File: "bitstreams/dma-afu-a10.gbs", SHA256: digest}},
		{name: "a symlink inside", b: Bitstream{Name: "dma", File: "bitstreams/inside.gbs", SHA256: strings.ToUpper(digest)}},
		{name: "no limit given: the default", b: Bitstream{Name: "dma", File: "bitstreams/dma-afu-a10.gbs", SHA256: digest}, max: -1},
		{
			name: "larger than the limit", b: Bitstream{Name: "dma", File: "bitstreams/dma-afu-a10.gbs", SHA256: digest}, max: 1000,
			want: "bitstream dma: file bitstreams/dma-afu-a10.gbs is 2393 bytes, more than the limit of 1000 bytes", wantErr: ErrTooLarge,
		},
		{
			name: "another digest", b: Bitstream{Name: "dma", File: "bitstreams/dma-afu-a10.gbs", SHA256: strings.Repeat("0", 64)},
			want: "bitstream dma: file bitstreams/dma-afu-a10.gbs has sha256 " + digest + ", not the declared " + strings.Repeat("0", 64),
		},
		{
			name: "a symlink outside", b: Bitstream{Name: "dma", File: "bitstreams/outside.gbs", SHA256: digest},
			want: "bitstream dma: file bitstreams/outside.gbs is a symlink to " + filepath.Join(out, "dma.gbs") + ", leading outside the repository", wantErr: ErrOutside,
		},
		{
			name: "a symlink to /dev/zero", b: Bitstream{Name: "dma", File: "bitstreams/zero.gbs", SHA256: digest},
			want: "bitstream dma: file bitstreams/zero.gbs is a symlink to /dev/zero, leading outside the repository", wantErr: ErrOutside,
		},
		{
			name: "a FIFO", b: Bitstream{Name: "dma", File: "bitstreams/pipe.gbs", SHA256: digest},
			want: "bitstream dma: file bitstreams/pipe.gbs is a named pipe, not a regular file", wantErr: ErrNotRegular,
		},
		{
			name: "a path climbing out", b: Bitstream{Name: "dma", File: "bitstreams/../../dma.gbs", SHA256: digest},
			want: "bitstream dma: file bitstreams/../../dma.gbs is outside the repository", wantErr: ErrOutside,
		},
		{
			name: "missing", b: Bitstream{Name: "dma", File: "bitstreams/gone.gbs", SHA256: digest},
			want: "bitstream dma: file bitstreams/gone.gbs does not exist", wantErr: fs.ErrNotExist,
		},
		{
			name: "a url", b: Bitstream{Name: "dma", URL: "https://example.com/dma.gbs", SHA256: digest},
			want: "bitstream dma: no file in the repository",
		},
		{
			name: "no digest", b: Bitstream{Name: "dma", File: "bitstreams/dma-afu-a10.gbs"},
			want: "bitstream dma: no sha256 to check file bitstreams/dma-afu-a10.gbs against",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := r.ReadBitstream(c.b, c.max)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != string(image) {
					t.Errorf("read %d bytes, not the image's %d", len(data), len(image))
				}
				return
			}
			if err == nil || err.Error() != c.want {
				t.Fatalf("got error %v\nwant        %s", err, c.want)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("error is not %v", c.wantErr)
			}
		})
	}
}

func move(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func replaceWithSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	symlink(t, target, link)
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}
