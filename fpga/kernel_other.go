//go:build !linux

package fpga

func (Syscalls) PortBusy(string) (bool, error)        { return false, ErrUnsupported }
func (Syscalls) ReleasePort(string, Stack, int) error { return ErrUnsupported }
func (Syscalls) AssignPort(string, Stack, int) error  { return ErrUnsupported }
func (Syscalls) PortPR(PR) error                      { return ErrUnsupported }
