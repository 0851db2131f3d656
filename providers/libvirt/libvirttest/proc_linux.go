package libvirttest

import "syscall"

// procAttr puts the daemon in its own process group, so a signal to the
// test's group does not reach it before Stop does, and has the kernel end
// it if the test process dies without stopping it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
