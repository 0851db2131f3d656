// Package fleetgen writes synthetic but valid fleet repositories: many
// nodes with mixed boards, a few shared GBS files, one binding per card and
// a policy that lets every change through. The benchmarks validate them and
// the simulated fleet serves them.
//
// The output is a function of the options alone. Nodes, cards, PCI
// addresses and VMs depend only on Nodes and FPGAsPerNode; Seed only
// chooses which of its board's bitstreams each card runs, so regenerating
// with seed+1 moves every binding to another bitstream.
package fleetgen

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/spec"
)

// Options say what to generate.
type Options struct {
	// Dir is the repository directory; it is created if missing. Files the
	// generator owns (policy.yaml, bitstreams/, nodes/*.yaml) are replaced.
	Dir string
	// Nodes is the number of nodes, at least 1.
	Nodes int
	// FPGAsPerNode is the number of cards per node, 1 to MaxFPGAsPerNode;
	// 0 means 4.
	FPGAsPerNode int
	// Seed chooses the bitstream of each binding.
	Seed int64
	// Endpoint is written into every node's endpoint, with "{node}"
	// replaced by the node's name (a simulated fleet serves node NAME at
	// its URL plus /nodes/NAME); empty means a per-node placeholder,
	// https://<node>.fleet.example:9443.
	Endpoint string
}

// MaxFPGAsPerNode is how many cards fit the generator's PCI bus plan.
const MaxFPGAsPerNode = 16

// BitstreamsPerBoard is how many images each board model has to choose
// from.
const BitstreamsPerBoard = 2

// Image is a generated bitstream.
type Image struct {
	Name  string
	Board spec.Board
	// File is the GBS file's path in the repository.
	File string
	Data []byte
	// InterfaceID and AFUID are normalised.
	InterfaceID, AFUID string
}

// InterfaceID is the PR interface ID the generator gives every card of a
// board model (normalised).
func InterfaceID(b spec.Board) string { return madeUpID("fim " + string(b)) }

// Images returns the generator's bitstreams, BitstreamsPerBoard for each
// board in spec.Boards order. They do not depend on the options.
func Images() ([]Image, error) {
	var out []Image
	for _, info := range spec.Boards {
		short := strings.TrimPrefix(string(info.Board), "pac-")
		for k := range BitstreamsPerBoard {
			name := fmt.Sprintf("%s-afu-%d", short, k)
			img := Image{
				Name:        name,
				Board:       info.Board,
				File:        "bitstreams/" + name + ".gbs",
				InterfaceID: InterfaceID(info.Board),
				AFUID:       madeUpID("afu " + name),
			}
			md := bitstream.Metadata{
				Version:      1,
				PlatformName: string(info.Board),
				AFUImage: bitstream.AFUImage{
					MagicNo:            bitstream.MagicNo,
					InterfaceUUID:      bitstream.FormatUUID(img.InterfaceID),
					Power:              20,
					ClockFrequencyHigh: 312.5,
					ClockFrequencyLow:  156.25,
					AcceleratorClusters: []bitstream.Cluster{
						{Name: name, TotalContexts: 1, AcceleratorTypeUUID: bitstream.FormatUUID(img.AFUID)},
					},
				},
			}
			data, err := bitstream.Build(md, payload(name, 512))
			if err != nil {
				return nil, fmt.Errorf("bitstream %s: %w", name, err)
			}
			img.Data = data
			out = append(out, img)
		}
	}
	return out, nil
}

// Generate writes the repository.
func Generate(opts Options) error {
	if opts.FPGAsPerNode == 0 {
		opts.FPGAsPerNode = 4
	}
	switch {
	case opts.Dir == "":
		return errors.New("fleetgen: no output directory")
	case opts.Nodes < 1:
		return fmt.Errorf("fleetgen: nodes %d: want at least 1", opts.Nodes)
	case opts.FPGAsPerNode < 1 || opts.FPGAsPerNode > MaxFPGAsPerNode:
		return fmt.Errorf("fleetgen: fpgas per node %d: want 1 to %d", opts.FPGAsPerNode, MaxFPGAsPerNode)
	}
	images, err := Images()
	if err != nil {
		return err
	}
	nodesDir := filepath.Join(opts.Dir, "nodes")
	if err := clearYAML(nodesDir); err != nil {
		return err
	}
	for _, d := range []string{nodesDir, filepath.Join(opts.Dir, "bitstreams")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("fleetgen: %w", err)
		}
	}
	var idx strings.Builder
	idx.WriteString("# Bitstreams of the generated fleet: BitstreamsPerBoard images per board.\n")
	for i, img := range images {
		if i > 0 {
			idx.WriteString("---\n")
		}
		sum := sha256.Sum256(img.Data)
		fmt.Fprintf(&idx, "apiVersion: %s\nkind: Bitstream\nname: %s\nfile: %s\nsha256: %s\ninterfaceID: %s\nafuID: %s\n",
			spec.APIVersion, img.Name, img.File, hex.EncodeToString(sum[:]), img.InterfaceID, img.AFUID)
		if err := writeFile(filepath.Join(opts.Dir, filepath.FromSlash(img.File)), img.Data); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(opts.Dir, "bitstreams", "bitstreams.yaml"), []byte(idx.String())); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(opts.Dir, "policy.yaml"), policy(opts)); err != nil {
		return err
	}
	var g errgroup.Group
	g.SetLimit(8)
	for i := 1; i <= opts.Nodes; i++ {
		g.Go(func() error {
			name := NodeName(i)
			return writeFile(filepath.Join(nodesDir, name+".yaml"), nodeFile(opts, i, images))
		})
	}
	return g.Wait()
}

// NodeName is the name of the i-th node (from 1).
func NodeName(i int) string { return fmt.Sprintf("node-%05d", i) }

// pciBuses are where the generator puts a node's cards, in slot order.
var pciBuses = [MaxFPGAsPerNode]int{0x3b, 0x5e, 0x86, 0xaf, 0xd8, 0x18, 0x1a, 0x1c, 0x3d, 0x60, 0x88, 0xb1, 0xda, 0x20, 0x22, 0x24}

// nodeFile is a node's document followed by one binding per card. Card k
// of a node is bound by mode k%4: a VF to a VM, the whole card (PF) to a
// VM, a VF to a VM, or no VM (a preprogrammed card).
func nodeFile(opts Options, i int, images []Image) []byte {
	name := NodeName(i)
	info := spec.Boards[i%len(spec.Boards)]
	endpoint := strings.ReplaceAll(opts.Endpoint, "{node}", name)
	if endpoint == "" {
		endpoint = "https://" + name + ".fleet.example:9443"
	}
	var b strings.Builder
	b.Grow(512 + 480*opts.FPGAsPerNode)
	fmt.Fprintf(&b, "# Generated by fpgaops sim gen (seed %d).\napiVersion: %s\nkind: Node\nname: %s\nendpoint: %s\nhostname: %s\nlabels:\n  rack: r%03d\n  board: %s\nfpgas:\n",
		opts.Seed, spec.APIVersion, name, endpoint, name, (i-1)/40+1, info.Board)
	for k := range opts.FPGAsPerNode {
		vfs := 1
		if k%4 == 1 {
			vfs = 0
		}
		fmt.Fprintf(&b, "  - slot: pac%d\n    pci: \"0000:%02x:00.0\"\n    board: %s\n    vfs: %d\n    interfaceID: %s\n",
			k, pciBuses[k], info.Board, vfs, InterfaceID(info.Board))
	}
	for k := range opts.FPGAsPerNode {
		img := pick(opts.Seed, i, k, info.Board, images)
		fmt.Fprintf(&b, "---\napiVersion: %s\nkind: Binding\nname: %s-pac%d\nnode: %s\nfpga: pac%d\n", spec.APIVersion, name, k, name, k)
		switch k % 4 {
		case 1:
			fmt.Fprintf(&b, "function: pf\nvm: %s\n", VMName(i, k))
		case 3:
			b.WriteString("function: vf0\n")
		default:
			fmt.Fprintf(&b, "function: vf0\nvm: %s\n", VMName(i, k))
		}
		fmt.Fprintf(&b, "bitstream: %s\n", img.Name)
	}
	return []byte(b.String())
}

// VMName is the VM bound to card k of node i, for cards that have one.
func VMName(i, k int) string { return fmt.Sprintf("vm-%05d-%d", i, k) }

// pick chooses card k of node i's bitstream among its board's images.
func pick(seed int64, i, k int, board spec.Board, images []Image) Image {
	var mine []Image
	for _, img := range images {
		if img.Board == board {
			mine = append(mine, img)
		}
	}
	n := int64(len(mine))
	j := ((int64(i)+int64(k))%n + seed%n + n) % n
	return mine[j]
}

// policy lets every change through at any hour: no windows, budgets as
// large as the fleet, drift corrected.
func policy(opts Options) []byte {
	cards := opts.Nodes * opts.FPGAsPerNode
	return fmt.Appendf(nil, `# Generated by fpgaops sim gen: changes may happen at any hour.
apiVersion: %s
kind: Policy
name: generated
schedule: "*/5 * * * *"
budget:
  maxDisruptedVMs: %d
  maxCardsInFlight: %d
prune:
  enabled: false
drift: correct
`, spec.APIVersion, cards, cards)
}

// clearYAML removes the YAML files a previous run wrote into nodes/, so a
// smaller fleet does not keep the nodes of a bigger one.
func clearYAML(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fleetgen: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("fleetgen: %w", err)
			}
		}
	}
	return nil
}

func writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("fleetgen: %w", err)
	}
	return nil
}

// madeUpID is a stable, realistic-looking 128-bit ID.
func madeUpID(s string) string {
	sum := sha256.Sum256([]byte("fpgaops fleetgen " + s))
	return hex.EncodeToString(sum[:16])
}

// payload is n bytes standing in for a PR image.
func payload(name string, n int) []byte {
	out := make([]byte, 0, n)
	block := sha256.Sum256([]byte(name))
	for len(out) < n {
		out = append(out, block[:]...)
		block = sha256.Sum256(block[:])
	}
	return out[:n]
}
