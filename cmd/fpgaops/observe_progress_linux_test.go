package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal: the terminal side, as a command's
// stderr would be, and the side that reads what was drawn on it.
func openPTY(t *testing.T) (term, reader *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	var n uint32
	var unlock int32
	for _, c := range []struct {
		req uintptr
		arg unsafe.Pointer
	}{{syscall.TIOCGPTN, unsafe.Pointer(&n)}, {syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)}} {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), c.req, uintptr(c.arg)); e != 0 {
			t.Fatalf("pseudo-terminal ioctl %#x: %v", c.req, e)
		}
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts, ptmx
}

// plan draws the observation's progress on stderr when it is a terminal,
// ending on every node counted, and prints nothing of it elsewhere; the
// plan itself is the same either way.
func TestPlanShowsObserveProgressOnATerminal(t *testing.T) {
	f := newSimFleet(t)
	args := f.flags("plan")

	term, reader := openPTY(t)
	var out bytes.Buffer
	root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: term})
	root.SetArgs(args)
	if code := exitCode(term, root.Execute()); code != 0 {
		t.Fatalf("plan on a terminal: exit %d\n%s", code, out.String())
	}
	term.Close()
	drawn, _ := io.ReadAll(reader) // ends with EIO once the terminal side is closed
	if !strings.Contains(string(drawn), "\rObserving [") || !strings.Contains(string(drawn), "] 2/2 nodes, 0 unknown") {
		t.Errorf("terminal shows %q; want the observation's progress to 2/2 nodes", drawn)
	}

	code, plain, errOut := f.run("", args...)
	if code != 0 || errOut != "" {
		t.Fatalf("plan off a terminal: exit %d, stderr %q", code, errOut)
	}
	if plain != out.String() {
		t.Errorf("the plan differs with stderr on a terminal:\n%s\nvs\n%s", out.String(), plain)
	}
}
