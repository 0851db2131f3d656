package fpga

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fpgaops/fpgaops/spec"
)

// SysfsHost is the Host of a Linux machine (or a fake tree of one): it
// reads sysfs below Root and changes hardware only through its Kernel.
type SysfsHost struct {
	root   string
	kernel Kernel
}

var _ Host = (*SysfsHost)(nil)

// NewSysfsHost returns the host whose filesystem root is root ("/" in
// production). k may be nil for a host that is only observed.
func NewSysfsHost(root string, k Kernel) *SysfsHost {
	return &SysfsHost{root: filepath.Clean(root), kernel: k}
}

// Root is the directory the host reads below.
func (h *SysfsHost) Root() string { return h.root }

// rel names a path for messages: relative to the root, so that errors read
// the same on a fake tree and on a host.
func (h *SysfsHost) rel(p string) string {
	if r, err := filepath.Rel(h.root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

func (h *SysfsHost) within(p string) bool {
	if h.root == "/" {
		return true
	}
	return p == h.root || strings.HasPrefix(p, h.root+string(filepath.Separator))
}

// resolve follows the symlink p the way the kernel lays sysfs out
// (relative links into /sys/devices), keeping absolute targets below the
// root and refusing anything that leaves it.
func (h *SysfsHost) resolve(p string) (string, error) {
	for range 8 {
		t, err := os.Readlink(p)
		if errors.Is(err, syscall.EINVAL) {
			return p, nil // not a link
		}
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(t) {
			p = filepath.Join(h.root, t)
		} else {
			p = filepath.Join(filepath.Dir(p), t)
		}
		if !h.within(p) {
			return "", fmt.Errorf("%s: link leaves the root", h.rel(p))
		}
	}
	return "", fmt.Errorf("%s: too many levels of links", h.rel(p))
}

// linkBase is the last element of a link's target: a driver's name, a
// VF's address.
func linkBase(p string) (string, error) {
	t, err := os.Readlink(p)
	if err != nil {
		return "", err
	}
	return filepath.Base(t), nil
}

func readString(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSpace(b)), nil
}

func readUint(p string, base int, bits int) (uint64, error) {
	s, err := readString(p)
	if err != nil {
		return 0, err
	}
	if base == 16 {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	}
	v, err := strconv.ParseUint(s, base, bits)
	if err != nil {
		return 0, &fs.PathError{Op: "parse", Path: p, Err: err}
	}
	return v, nil
}

func readInt(p string) (int, error) {
	s, err := readString(p)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, &fs.PathError{Op: "parse", Path: p, Err: err}
	}
	return v, nil
}

// IsPCIAddress reports whether s is a PCI address in the form sysfs names
// functions: with domain, lowercase, "0000:5e:00.0".
func IsPCIAddress(s string) bool {
	a, err := spec.ParsePCIAddress(s)
	return err == nil && a.String() == s
}

// pciDir returns the deepest PCI function directory of a sysfs path
// (regions, FMEs and ports sit below their function's directory), and its
// address.
func pciDir(p string) (dir, bdf string, ok bool) {
	for d := p; d != "/" && d != "." && d != ""; d = filepath.Dir(d) {
		if b := filepath.Base(d); IsPCIAddress(b) {
			return d, b, true
		}
	}
	return "", "", false
}

// allF reports whether a hex ID reads all f: what crashed firmware returns.
func allF(s string) bool {
	s = strings.TrimPrefix(s, "0x")
	return len(s) >= 16 && strings.Trim(strings.ToLower(s), "f") == ""
}
