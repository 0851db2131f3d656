//go:build !linux

package libvirttest

import "syscall"

// procAttr puts the daemon in its own process group, so a signal to the
// test's group does not reach it before Stop does.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
