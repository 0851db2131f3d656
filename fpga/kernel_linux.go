package fpga

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

func ioctl(path string, req uint32, arg unsafe.Pointer) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(arg))
	if errno != 0 {
		return fmt.Errorf("ioctl %#x on %s: %w", req, path, errno)
	}
	return nil
}

// PortBusy opens the port exclusively, as OPAE's fpgaconf does: the
// driver refuses with EBUSY when someone else has it open.
func (Syscalls) PortBusy(portDev string) (bool, error) {
	f, err := os.OpenFile(portDev, os.O_RDWR|syscall.O_EXCL, 0)
	if errors.Is(err, syscall.EBUSY) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, f.Close()
}

func (Syscalls) ReleasePort(fmeDev string, stack Stack, port int) error {
	return portConfig(fmeDev, stack, port, DFLFMEPortRelease, IntelFMEPortRelease)
}

func (Syscalls) AssignPort(fmeDev string, stack Stack, port int) error {
	return portConfig(fmeDev, stack, port, DFLFMEPortAssign, IntelFMEPortAssign)
}

func portConfig(fmeDev string, stack Stack, port int, dflReq, intelReq uint32) error {
	switch stack {
	case StackDFL:
		id := int32(port)
		return ioctl(fmeDev, dflReq, unsafe.Pointer(&id))
	case StackIntelFPGA:
		a := newIntelPortArg(port)
		return ioctl(fmeDev, intelReq, unsafe.Pointer(&a))
	}
	return fmt.Errorf("unknown driver stack %q", stack)
}

// PortPR sends the payload to the FME. The payload is pinned for the
// duration of the call because the kernel reads it through a plain
// address inside the argument struct.
func (Syscalls) PortPR(pr PR) error {
	if len(pr.Payload) == 0 {
		return errors.New("empty PR payload")
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&pr.Payload[0])
	addr := uint64(uintptr(unsafe.Pointer(&pr.Payload[0])))
	switch pr.Stack {
	case StackDFL:
		a := newDFLPortPR(pr.Port, pr.Payload, addr)
		return ioctl(pr.FME, DFLFMEPortPR, unsafe.Pointer(&a))
	case StackIntelFPGA:
		a := newIntelPortPR(pr.Port, pr.Payload, addr)
		err := ioctl(pr.FME, IntelFMEPortPR, unsafe.Pointer(&a))
		if errors.Is(err, syscall.EIO) && a.Status != 0 {
			return fmt.Errorf("%w: %s", err, intelPRStatus(a.Status))
		}
		return err
	}
	return fmt.Errorf("unknown driver stack %q", pr.Stack)
}
