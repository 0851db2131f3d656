package fpga

import (
	"testing"
	"unsafe"
)

// The request numbers match what the uapi headers' _IO/_IOW macros give.
func TestIoctlRequests(t *testing.T) {
	intSize := uint32(unsafe.Sizeof(int32(0)))
	tests := []struct {
		name  string
		got   uint32
		value uint32
	}{
		{"DFL_FPGA_FME_PORT_PR", ioc(iocNone, dflMagic, fmeBase+0, 0), DFLFMEPortPR},
		{"DFL_FPGA_FME_PORT_RELEASE", ioc(iocWrite, dflMagic, fmeBase+1, intSize), DFLFMEPortRelease},
		{"DFL_FPGA_FME_PORT_ASSIGN", ioc(iocWrite, dflMagic, fmeBase+2, intSize), DFLFMEPortAssign},
		{"FPGA_FME_PORT_PR", ioc(iocNone, intelMagic, fmeBase+0, 0), IntelFMEPortPR},
		{"FPGA_FME_PORT_RELEASE", ioc(iocNone, intelMagic, fmeBase+1, 0), IntelFMEPortRelease},
		{"FPGA_FME_PORT_ASSIGN", ioc(iocNone, intelMagic, fmeBase+2, 0), IntelFMEPortAssign},
	}
	for _, tc := range tests {
		if tc.got != tc.value {
			t.Errorf("%s: macro gives %#x, constant is %#x", tc.name, tc.got, tc.value)
		}
	}
}

// The argument structs have the C layout of the uapi headers.
func TestIoctlLayouts(t *testing.T) {
	var d dflPortPR
	var i intelPortPR
	var a intelPortArg
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof dfl_fpga_fme_port_pr", unsafe.Sizeof(d), 24},
		{"dfl argsz", unsafe.Offsetof(d.Argsz), 0},
		{"dfl flags", unsafe.Offsetof(d.Flags), 4},
		{"dfl port_id", unsafe.Offsetof(d.PortID), 8},
		{"dfl buffer_size", unsafe.Offsetof(d.BufferSize), 12},
		{"dfl buffer_address", unsafe.Offsetof(d.BufferAddress), 16},
		{"sizeof fpga_fme_port_pr", unsafe.Sizeof(i), 32},
		{"intel port_id", unsafe.Offsetof(i.PortID), 8},
		{"intel buffer_size", unsafe.Offsetof(i.BufferSize), 12},
		{"intel buffer_address", unsafe.Offsetof(i.BufferAddress), 16},
		{"intel status", unsafe.Offsetof(i.Status), 24},
		{"sizeof fpga_fme_port_release", unsafe.Sizeof(a), 12},
		{"release port_id", unsafe.Offsetof(a.PortID), 8},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}

func TestIoctlArgs(t *testing.T) {
	payload := make([]byte, 1234)
	d := newDFLPortPR(0, payload, 0xdead0000)
	if d.Argsz != 24 || d.PortID != 0 || d.BufferSize != 1234 || d.BufferAddress != 0xdead0000 || d.Flags != 0 {
		t.Errorf("dfl PR args %+v", d)
	}
	i := newIntelPortPR(1, payload, 0xbeef0000)
	if i.Argsz != 32 || i.PortID != 1 || i.BufferSize != 1234 || i.BufferAddress != 0xbeef0000 || i.Status != 0 {
		t.Errorf("intel PR args %+v", i)
	}
	if a := newIntelPortArg(2); a.Argsz != 12 || a.PortID != 2 || a.Flags != 0 {
		t.Errorf("intel port args %+v", a)
	}
}

func TestIntelPRStatus(t *testing.T) {
	for _, tc := range []struct {
		s    uint64
		want string
	}{
		{1 << 2, "PR incompatible bitstream error"},
		{1<<1 | 1<<5, "PR CRC error, PR timeout error"},
		{1 << 9, "status 0x200"},
	} {
		if got := intelPRStatus(tc.s); got != tc.want {
			t.Errorf("intelPRStatus(%#x) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
