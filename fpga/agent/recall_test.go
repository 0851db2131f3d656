package agent_test

import (
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
)

func TestRecallAFU(t *testing.T) {
	const pci = "0000:5e:00.0"
	tests := []struct {
		name        string
		seen        map[string]string
		ports       []fpga.Port
		wantAFU     string
		wantChanged bool
		wantSeen    string
	}{
		{"readable port is recorded", map[string]string{}, []fpga.Port{{ID: 0, AFUID: agenttest.AFUID}}, agenttest.AFUID, true, agenttest.AFUID},
		{"same ID again changes nothing", map[string]string{pci: agenttest.AFUID}, []fpga.Port{{ID: 0, AFUID: agenttest.AFUID}}, agenttest.AFUID, false, agenttest.AFUID},
		{"port on a VF in a VM is recalled", map[string]string{pci: agenttest.AFUID}, []fpga.Port{{ID: 0, OnVF: true}}, agenttest.AFUID, false, agenttest.AFUID},
		{"PF in a VM shows no port; it is recalled", map[string]string{pci: agenttest.AFUID}, nil, agenttest.AFUID, false, agenttest.AFUID},
		{"never seen stays unknown", map[string]string{}, []fpga.Port{{ID: 0, OnVF: true}}, "", false, ""},
		{"a new ID replaces the old", map[string]string{pci: "00"}, []fpga.Port{{ID: 0, AFUID: agenttest.AFUID}}, agenttest.AFUID, true, agenttest.AFUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devs := []fpga.Device{{PCI: pci, Ports: tt.ports}}
			changed := agent.RecallAFU(devs, tt.seen)
			if got := devs[0].AFUID(); got != tt.wantAFU {
				t.Errorf("AFU ID = %q; want %q", got, tt.wantAFU)
			}
			if changed != tt.wantChanged || tt.seen[pci] != tt.wantSeen {
				t.Errorf("changed = %v, seen = %q; want %v, %q", changed, tt.seen[pci], tt.wantChanged, tt.wantSeen)
			}
		})
	}
}
