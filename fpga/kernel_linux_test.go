package fpga

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The real ioctls reach the kernel: on a plain file it answers ENOTTY,
// which shows the call was made with the file's descriptor.
func TestSyscallsReachTheKernel(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "dfl-fme.0")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	k := Syscalls{}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"dfl PR", k.PortPR(PR{FME: dev, Stack: StackDFL, Payload: []byte{1, 2, 3}})},
		{"intel PR", k.PortPR(PR{FME: dev, Stack: StackIntelFPGA, Payload: []byte{1, 2, 3}})},
		{"dfl release", k.ReleasePort(dev, StackDFL, 0)},
		{"intel assign", k.AssignPort(dev, StackIntelFPGA, 0)},
	} {
		if !errors.Is(tc.err, syscall.ENOTTY) {
			t.Errorf("%s on a plain file: %v, want ENOTTY", tc.name, tc.err)
		}
	}
	if err := k.PortPR(PR{FME: dev, Stack: StackDFL}); err == nil {
		t.Error("PR with an empty payload was sent")
	}
	if busy, err := k.PortBusy(dev); busy || err != nil {
		t.Errorf("PortBusy on a closed file = %v, %v", busy, err)
	}
	pf := t.TempDir()
	if err := os.WriteFile(filepath.Join(pf, "sriov_numvfs"), []byte("0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := k.SetNumVFs(pf, 1); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(pf, "sriov_numvfs")); string(b) != "1\n" {
		t.Errorf("sriov_numvfs = %q, want 1", b)
	}
}
