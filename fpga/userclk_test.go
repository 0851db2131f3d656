package fpga

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeUserclk writes a stand-in for OPAE's userclk (which needs the
// hardware) that records its arguments and exits with code.
func fakeUserclk(t *testing.T, code int, say string) (tool, args string) {
	t.Helper()
	dir := t.TempDir()
	tool, args = filepath.Join(dir, "userclk"), filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" > " + args + "\necho '" + say + "'\nexit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(tool, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return tool, args
}

// portDir makes a port directory below a PCI function, with or without
// the userclk interface.
func portDir(t *testing.T, userclk bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0/dfl-port.0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if userclk {
		if err := os.WriteFile(filepath.Join(dir, "userclk_freqcmd"), nil, 0o200); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The real kernel sets user clocks with OPAE's userclk on the port's card
// (no shell, the PCI address and the two frequencies as arguments), and
// says why when it cannot.
func TestSyscallsSetUserClock(t *testing.T) {
	clk := UserClock{High: 400, Low: 200}
	t.Run("runs userclk on the card", func(t *testing.T) {
		tool, args := fakeUserclk(t, 0, "ok")
		if err := (Syscalls{UserClockTool: tool}).SetUserClock(portDir(t, true), StackDFL, clk); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(args)
		if err != nil || strings.TrimSpace(string(got)) != "0000:5e:00.0 -H 400 -L 200" {
			t.Errorf("userclk ran with %q (%v)", got, err)
		}
	})
	t.Run("a port without userclk_freqcmd has no interface", func(t *testing.T) {
		tool, args := fakeUserclk(t, 0, "ok")
		err := (Syscalls{UserClockTool: tool}).SetUserClock(portDir(t, false), StackDFL, clk)
		if !errors.Is(err, ErrUserClockUnavailable) {
			t.Fatalf("SetUserClock: %v, want ErrUserClockUnavailable", err)
		}
		if _, err := os.Stat(args); err == nil {
			t.Error("userclk ran for a port without the interface")
		}
	})
	t.Run("userclk fails", func(t *testing.T) {
		tool, _ := fakeUserclk(t, 1, "Invalid Input frequency")
		err := (Syscalls{UserClockTool: tool}).SetUserClock(portDir(t, true), StackIntelFPGA, clk)
		if !errors.Is(err, ErrUserClock) || !strings.Contains(err.Error(), "Invalid Input frequency") {
			t.Fatalf("SetUserClock: %v, want ErrUserClock with userclk's message", err)
		}
	})
	t.Run("no userclk installed", func(t *testing.T) {
		err := (Syscalls{UserClockTool: filepath.Join(t.TempDir(), "userclk")}).SetUserClock(portDir(t, true), StackDFL, clk)
		if !errors.Is(err, ErrUserClock) || !strings.Contains(err.Error(), "needs OPAE's userclk") {
			t.Fatalf("SetUserClock: %v, want an error naming userclk", err)
		}
	})
}

func TestUserClockCheck(t *testing.T) {
	for _, tc := range []struct {
		clk UserClock
		ok  bool
	}{
		{UserClock{400, 200}, true},
		{UserClock{25, 0}, true},
		{UserClock{1200, 1200}, true},
		{UserClock{0, 200}, false},
		{UserClock{24, 12}, false},
		{UserClock{1201, 600}, false},
		{UserClock{300, 400}, false},
	} {
		if err := tc.clk.Check(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrUserClock)) {
			t.Errorf("%+v.Check() = %v, want ok %v", tc.clk, err, tc.ok)
		}
	}
}
