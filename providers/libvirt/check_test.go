package libvirt_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/fpgaops/fpgaops/providers/libvirt"
)

// TestCheckAttach asks the real libvirtd, changing nothing, whether an
// attach could happen: the errors are the ones Attach would give.
func TestCheckAttach(t *testing.T) {
	tests := []struct {
		name    string
		vm, pci string
		is      error
		msg     string
	}{
		{"stopped domain, PF", "web-01", "0000:5e:00.0", nil, ""},
		{"running domain, VF", "db-01", "0000:5e:00.1", nil, ""},
		{"VF address not known yet", "web-01", "", nil, ""},
		{"missing domain", "ghost-01", "0000:5e:00.0", libvirt.ErrNoDomain,
			"node compute-01 vm ghost-01 hostdev 0000:5e:00.0: no such domain"},
		{"missing domain, no address", "ghost-01", "", libvirt.ErrNoDomain,
			"node compute-01 vm ghost-01: no such domain"},
		{"missing PCI device", "web-01", "0000:3b:00.0", libvirt.ErrNoPCIDevice,
			"node compute-01 vm web-01 hostdev 0000:3b:00.0: no such PCI device on the node"},
		{"malformed PCI address", "web-01", "0000:5e:00.8", nil,
			`node compute-01 vm web-01 hostdev 0000:5e:00.8: PCI address "0000:5e:00.8": want dddd:bb:ss.f`},
	}
	s := newScenario(t)
	before := s.observe(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.proxy.Reset()
			err := s.p.CheckAttach(s.ctx, s.node, tc.vm, tc.pci)
			if m := s.proxy.Mutations(); len(m) != 0 {
				t.Errorf("a check changed something: %+v", m)
			}
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("CheckAttach: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if err.Error() != tc.msg {
				t.Errorf("error:\n got %q\nwant %q", err.Error(), tc.msg)
			}
		})
	}
	if after := s.observe(t); !reflect.DeepEqual(after, before) {
		t.Errorf("fleet changed:\nbefore %+v\n after %+v", before, after)
	}
}
