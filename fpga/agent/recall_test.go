package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
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

func TestRecallInterface(t *testing.T) {
	const (
		pci   = "0000:5e:00.0"
		other = "0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name        string
		seen        map[string]string
		dev         fpga.Device
		wantIface   string
		wantChanged bool
		wantSeen    string
	}{
		{"readable ID is recorded", map[string]string{}, fpga.Device{Driver: "dfl-pci", InterfaceID: agenttest.InterfaceID}, agenttest.InterfaceID, true, agenttest.InterfaceID},
		{"same ID again changes nothing", map[string]string{pci: agenttest.InterfaceID}, fpga.Device{Driver: "dfl-pci", InterfaceID: agenttest.InterfaceID}, agenttest.InterfaceID, false, agenttest.InterfaceID},
		{"a new ID replaces the old", map[string]string{pci: other}, fpga.Device{Driver: "dfl-pci", InterfaceID: agenttest.InterfaceID}, agenttest.InterfaceID, true, agenttest.InterfaceID},
		{"PF in a VM is recalled", map[string]string{pci: agenttest.InterfaceID}, fpga.Device{Driver: "vfio-pci"}, agenttest.InterfaceID, false, agenttest.InterfaceID},
		{"PF in a VM never seen stays unknown", map[string]string{}, fpga.Device{Driver: "vfio-pci"}, "", false, ""},
		{"no FME without a VM is not papered over", map[string]string{pci: agenttest.InterfaceID}, fpga.Device{Driver: ""}, "", false, agenttest.InterfaceID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.dev.PCI = pci
			devs := []fpga.Device{tt.dev}
			changed := agent.RecallInterface(devs, tt.seen)
			if got := devs[0].InterfaceID; got != tt.wantIface {
				t.Errorf("interface ID = %q; want %q", got, tt.wantIface)
			}
			if changed != tt.wantChanged || tt.seen[pci] != tt.wantSeen {
				t.Errorf("changed = %v, seen = %q; want %v, %q", changed, tt.seen[pci], tt.wantChanged, tt.wantSeen)
			}
		})
	}
}

// TestMemorySurvivesRestart reads a card from a fake sysfs tree, hands
// its whole PF to a VM, and restarts the agent: the new one still knows
// the card's interface and AFU IDs, which it cannot read.
func TestMemorySurvivesRestart(t *testing.T) {
	const pci = "0000:5e:00.0"
	tree := fpgatest.NewTree(filepath.Join(t.TempDir(), "root"))
	if err := tree.AddCard(fpgatest.Card{PCI: pci, Board: spec.BoardN3000, Stack: fpga.StackDFL,
		InterfaceID: agenttest.InterfaceID, AFUID: agenttest.AFUID}); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	discover := func(t *testing.T, dir string) fpga.Device {
		t.Helper()
		mem, err := agent.OpenMemory(dir)
		if err != nil {
			t.Fatal(err)
		}
		devs, err := agent.Recalling(tree.Host(), mem, nil).Discover(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 1 {
			t.Fatalf("discovered %d cards; want 1", len(devs))
		}
		return devs[0]
	}
	if d := discover(t, state); d.InterfaceID != agenttest.InterfaceID || d.AFUID() != agenttest.AFUID {
		t.Fatalf("host-held card reads %q, %q", d.InterfaceID, d.AFUID())
	}
	if err := tree.BindPF(pci, "vfio-pci"); err != nil {
		t.Fatal(err)
	}
	if d := discover(t, t.TempDir()); d.InterfaceID != "" || d.AFUID() != "" {
		t.Fatalf("without memory, a PF in a VM reads %q, %q; want nothing (the test's premise)", d.InterfaceID, d.AFUID())
	}
	if d := discover(t, state); d.InterfaceID != agenttest.InterfaceID || d.AFUID() != agenttest.AFUID {
		t.Fatalf("after a restart, the PF in a VM reads %q, %q; want %q, %q", d.InterfaceID, d.AFUID(), agenttest.InterfaceID, agenttest.AFUID)
	}
	entries, err := os.ReadDir(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != agent.MemoryFile {
		t.Fatalf("state directory holds %v; want only %s", entries, agent.MemoryFile)
	}
}

// TestMemorySaveIsRetried shows a memory that could not be saved is
// saved with the next discovery, though nothing changed since.
func TestMemorySaveIsRetried(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	mem, err := agent.OpenMemory(dir)
	if err != nil {
		t.Fatal(err)
	}
	devs := func() []fpga.Device {
		return []fpga.Device{{PCI: agenttest.CardPCI, Driver: "dfl-pci", InterfaceID: agenttest.InterfaceID, Ports: []fpga.Port{{ID: 0, AFUID: agenttest.AFUID}}}}
	}
	// A file where the state directory should be: the save fails.
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mem.Recall(devs()); err == nil {
		t.Fatal("saved into a directory that is a file")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := mem.Recall(devs()); err != nil {
		t.Fatal(err)
	}
	again, err := agent.OpenMemory(dir)
	if err != nil {
		t.Fatal(err)
	}
	held := []fpga.Device{{PCI: agenttest.CardPCI, Driver: "vfio-pci"}}
	if err := again.Recall(held); err != nil {
		t.Fatal(err)
	}
	if held[0].InterfaceID != agenttest.InterfaceID || held[0].AFUID() != agenttest.AFUID {
		t.Fatalf("recalled %+v; want the IDs saved on the retry", held[0])
	}
}

func TestOpenMemoryRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"not JSON", "{\n  \"cards\": {\n    \"0000:5e:00.0\": nope\n", []string{"cards.json:3:22"}},
		{"wrong type", "{\"cards\": []}", []string{"cards.json:1:11"}},
		{"unknown field", "{\"cards\": {}, \"afu\": {}}", []string{"cards.json:", `unknown field "afu"`}},
		{"every bad card at once", `{"cards": {"pac0": {"afuID": "` + agenttest.AFUID + `"}, "0000:5e:00.0": {"afuID": "xyz", "interfaceID": "12"}}}`,
			[]string{`card "pac0": want a PCI address`, `card 0000:5e:00.0: afuID "xyz"`, `card 0000:5e:00.0: interfaceID "12"`}},
		{"too large", `{"cards": {}}` + strings.Repeat(" ", 1<<20), []string{"over 1048576 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, agent.MemoryFile), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := agent.OpenMemory(dir)
			if err == nil {
				t.Fatal("opened a bad memory file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
