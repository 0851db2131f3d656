package agenttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/spec"
)

// Test IDs of the card MemHost holds.
const (
	CardPCI     = "0000:5e:00.0"
	InterfaceID = "69528db6eb31577a8c3668f9faa081f6"
	AFUID       = "d8424dc4a4a3c413f89e433683f9040b"
)

// MemHost is a one-card host in memory: enough to test the agent's API
// without a sysfs tree.
type MemHost struct {
	mu       sync.Mutex
	dev      fpga.Device
	programs int
	last     fpga.ProgramOptions
}

// NewMemHost returns a host with one N3000 at CardPCI.
func NewMemHost() *MemHost {
	return &MemHost{dev: fpga.Device{
		PCI: CardPCI, Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000",
		InterfaceID: InterfaceID, TotalVFs: 1, Ports: []fpga.Port{{ID: 0}},
	}}
}

func (h *MemHost) Discover(context.Context) ([]fpga.Device, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return []fpga.Device{h.dev}, nil
}

func (h *MemHost) SetVFs(_ context.Context, pci string, n int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pci != h.dev.PCI {
		return fpga.ErrNoCard
	}
	h.dev.NumVFs = n
	return nil
}

func (h *MemHost) Program(_ context.Context, pci string, image []byte, opts fpga.ProgramOptions) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = opts
	if pci != h.dev.PCI {
		return fpga.ErrNoCard
	}
	f, err := bitstream.Parse(image)
	if err != nil {
		return err
	}
	h.dev.Ports[0].AFUID = f.AFUID()
	h.programs++
	return nil
}

// Programs counts the programs that succeeded.
func (h *MemHost) Programs() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.programs
}

// LastOptions are the options of the last program asked for.
func (h *MemHost) LastOptions() fpga.ProgramOptions {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Image builds a GBS for MemHost's card, and the Bitstream that names it.
func Image(t testing.TB) ([]byte, spec.Bitstream) {
	t.Helper()
	md := bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{
		MagicNo:       bitstream.MagicNo,
		InterfaceUUID: InterfaceID,
		AcceleratorClusters: []bitstream.Cluster{{
			Name: "nlb", TotalContexts: 1, AcceleratorTypeUUID: AFUID,
		}},
	}}
	data, err := bitstream.Build(md, bytes.Repeat([]byte{0xa5}, 4096))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return data, spec.Bitstream{
		Name: "nlb", SHA256: hex.EncodeToString(sum[:]), InterfaceID: InterfaceID, AFUID: AFUID,
	}
}

// Device is the card as it is now.
func (h *MemHost) Device() fpga.Device {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dev
}
