package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// Repo is a fleet repository opened for reading. Every file fpgaops reads
// from a repository goes through a Repo: the YAML documents, .fpgaopsignore
// and the GBS files the bitstreams name, when the fleet is loaded and again
// when an image is sent to a card.
//
// A Repo reads through an os.Root, so neither ".." nor a symlink leads out
// of the directory: a symlink is followed when it stays inside, and is an
// error when it leaves, dangles or loops. Only regular files are read (a
// symlink to /dev/zero or a FIFO is refused, and a FIFO is never waited
// on), and every read is bounded twice: by the size stat reports, before
// a byte is read, and by a limited reader, since a file can grow.
type Repo struct {
	dir  string
	root *os.Root
}

// OpenRepo opens the repository at dir. Close it when done.
func OpenRepo(dir string) (*Repo, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Repo{dir: dir, root: root}, nil
}

// Close releases the repository's directory.
func (r *Repo) Close() error { return r.root.Close() }

// Errors a FileError wraps, for errors.Is; a missing file wraps
// fs.ErrNotExist.
var (
	// ErrOutside: the path, or a symlink on it, leads out of the
	// repository (a symlink with an absolute target always does).
	ErrOutside = errors.New("outside the repository")
	// ErrNotRegular: a directory, FIFO, device or socket where a file is
	// read.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is larger than the limit it is read with.
	ErrTooLarge = errors.New("larger than the limit")
	// ErrSymlinkLoop: the symlinks on the path lead in a circle.
	ErrSymlinkLoop = errors.New("a symlink loop")
)

// FileError says why a file of the repository is not read. Its message is
// the path followed by Why: "bitstreams/x.gbs is a symlink to /dev/zero,
// outside the repository".
type FileError struct {
	// Path is the file's path relative to the repository root.
	Path string
	// Why completes a sentence whose subject is the file.
	Why string
	Err error
}

func (e *FileError) Error() string { return e.Path + " " + e.Why }
func (e *FileError) Unwrap() error { return e.Err }

// TooLarge returns the sizes of a file refused by ErrTooLarge.
func (e *FileError) TooLarge() (size, limit int64, ok bool) {
	var t *tooLarge
	if errors.As(e.Err, &t) {
		return t.size, t.limit, true
	}
	return 0, 0, false
}

type tooLarge struct{ size, limit int64 }

func (t *tooLarge) Error() string { return ErrTooLarge.Error() }
func (t *tooLarge) Unwrap() error { return ErrTooLarge }

// cleanPath turns a path from a document into a path inside the
// repository, or reports that it leaves it.
func cleanPath(name string) (string, error) {
	clean := path.Clean(strings.ReplaceAll(name, `\`, "/"))
	if !fs.ValidPath(clean) || clean == "." {
		return "", &FileError{Path: name, Why: "is " + ErrOutside.Error(), Err: ErrOutside}
	}
	return clean, nil
}

// stat follows name's symlinks inside the repository and explains the
// ones that leave it, dangle or loop.
func (r *Repo) stat(name string) (fs.FileInfo, error) {
	fi, err := r.root.Stat(name)
	if err == nil {
		return fi, nil
	}
	link := ""
	if l, lerr := r.root.Lstat(name); lerr == nil && l.Mode()&fs.ModeSymlink != 0 {
		if target, rerr := r.root.Readlink(name); rerr == nil {
			link = "is a symlink to " + target + ", "
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if link != "" {
			return nil, &FileError{Path: name, Why: link + "which does not exist", Err: fs.ErrNotExist}
		}
		return nil, &FileError{Path: name, Why: "does not exist", Err: fs.ErrNotExist}
	case errors.Is(err, syscall.ELOOP):
		return nil, &FileError{Path: name, Why: "is on a symlink loop", Err: ErrSymlinkLoop}
	case isEscape(err):
		if link == "" {
			link = "is reached through a symlink "
		}
		return nil, &FileError{Path: name, Why: link + "leading " + ErrOutside.Error(), Err: ErrOutside}
	}
	return nil, cannotRead(name, err)
}

// cannotRead is a FileError for a failed system call.
func cannotRead(name string, err error) *FileError {
	return &FileError{Path: name, Why: "cannot be read: " + unwrapPath(err).Error(), Err: err}
}

// isEscape reports whether err is os.Root refusing a path that leaves it.
// The os package does not export that error.
func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes")
}

// unwrapPath drops the operation and path an fs error repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// notRegular describes what a non-regular file is.
func notRegular(name string, mode fs.FileMode) error {
	what := "a special file"
	switch {
	case mode.IsDir():
		what = "a directory"
	case mode&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case mode&fs.ModeCharDevice != 0:
		what = "a character device"
	case mode&fs.ModeDevice != 0:
		what = "a device"
	case mode&fs.ModeSocket != 0:
		what = "a socket"
	}
	return &FileError{Path: name, Why: "is " + what + ", not a regular file", Err: ErrNotRegular}
}

func errTooLarge(name string, size, limit int64) error {
	return &FileError{
		Path: name,
		Why:  fmt.Sprintf("is %s, more than the limit of %s", formatBytes(size), formatBytes(limit)),
		Err:  &tooLarge{size, limit},
	}
}

// open opens a regular file of the repository, refusing it before reading
// when it is larger than max. It returns the size stat reported.
func (r *Repo) open(name string, max int64) (*os.File, int64, error) {
	fi, err := r.stat(name)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, notRegular(name, fi.Mode())
	}
	if fi.Size() > max {
		return nil, 0, errTooLarge(name, fi.Size(), max)
	}
	return r.openListed(name, max)
}

// openListed is open for a file a directory listing showed to be regular
// (not a symlink): opening it is safe, and the stat on the open file
// checks it again before a byte is read.
func (r *Repo) openListed(name string, max int64) (*os.File, int64, error) {
	// Non-blocking, so that a file swapped for a FIFO after it was listed
	// is not waited on; it is refused by the checks below.
	f, err := r.root.OpenFile(name, openFlags, 0)
	if err != nil {
		return nil, 0, cannotRead(name, err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return nil, 0, cannotRead(name, err)
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, 0, notRegular(name, fi.Mode())
	case fi.Size() > max:
		f.Close()
		return nil, 0, errTooLarge(name, fi.Size(), max)
	}
	return f, fi.Size(), nil
}

// readAll reads an open file of at most max bytes, whatever stat said.
func readAll(name string, f io.Reader, size, max int64) ([]byte, error) {
	var buf bytes.Buffer
	// Room for the whole file and the end-of-file read, so that the
	// buffer is allocated once.
	buf.Grow(int(size) + bytes.MinRead)
	n, err := buf.ReadFrom(io.LimitReader(f, max+1))
	if err != nil {
		return nil, cannotRead(name, err)
	}
	if n > max {
		return nil, errTooLarge(name, n, max)
	}
	return buf.Bytes(), nil
}

// readFile reads a whole regular file of at most max bytes.
func (r *Repo) readFile(name string, max int64) ([]byte, error) {
	f, size, err := r.open(name, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(name, f, size, max)
}

// ReadBitstream reads the image of a bitstream kept in the repository
// (b.File) through the repository's root, refuses it when it is larger
// than max bytes (max <= 0: DefaultMaxBitstreamBytes) before reading it,
// and returns it only when its SHA-256 is b.SHA256. This is how an image
// is read to be sent to a card; the limit to pass is the fleet's,
// Policy.MaxBitstreamBytes.
func (r *Repo) ReadBitstream(b Bitstream, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBitstreamBytes
	}
	if b.File == "" {
		return nil, fmt.Errorf("bitstream %s: no file in the repository", b.Name)
	}
	if b.SHA256 == "" {
		return nil, fmt.Errorf("bitstream %s: no sha256 to check file %s against", b.Name, b.File)
	}
	name, err := cleanPath(b.File)
	if err != nil {
		return nil, fmt.Errorf("bitstream %s: file %w", b.Name, err)
	}
	data, err := r.readFile(name, max)
	if err != nil {
		return nil, fmt.Errorf("bitstream %s: file %w", b.Name, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, b.SHA256) {
		return nil, fmt.Errorf("bitstream %s: file %s has sha256 %s, not the declared %s", b.Name, name, got, b.SHA256)
	}
	return data, nil
}

// formatBytes writes a size exactly, and in MiB or GiB when that reads
// better: "268435456 bytes (256 MiB)".
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d bytes (%d GiB)", n, n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%d bytes (%.1f GiB)", n, float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d bytes (%d MiB)", n, n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
