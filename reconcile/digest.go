package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
)

// cardDigest is a digest of everything the repository says about a card:
// the journal and drift detection key on it. bindings are sorted by name.
func cardDigest(node string, c *spec.FPGA, bindings []*spec.Binding, bitstreams map[string]*spec.Bitstream) string {
	buf := make([]byte, 0, 256)
	field := func(s string) { buf = append(append(buf, s...), 0) }
	field(node)
	field(c.Slot)
	field(c.PCI)
	field(string(c.Board))
	buf = strconv.AppendInt(buf, int64(c.VFs), 10)
	field("")
	field(c.InterfaceID)
	for _, b := range bindings {
		field(b.Name)
		field(b.Function.String())
		field(b.VM)
		field(b.Bitstream)
		if bs, ok := bitstreams[b.Bitstream]; ok {
			field(bs.SHA256)
		} else {
			field("")
		}
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8])
}

// CardDigests returns the desired digest of every card, by card ID: what
// a run records as applied once a card has converged (Options.Applied).
func CardDigests(desired *spec.Fleet) map[string]string {
	bitstreams := make(map[string]*spec.Bitstream, len(desired.Bitstreams))
	for i := range desired.Bitstreams {
		bitstreams[desired.Bitstreams[i].Name] = &desired.Bitstreams[i]
	}
	type slotKey struct{ node, slot string }
	bindings := map[slotKey][]*spec.Binding{}
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		bindings[slotKey{b.Node, b.FPGA}] = append(bindings[slotKey{b.Node, b.FPGA}], b)
	}
	out := make(map[string]string, desired.FPGACount())
	for i := range desired.Nodes {
		n := &desired.Nodes[i]
		for c := range n.FPGAs {
			card := &n.FPGAs[c]
			bs := bindings[slotKey{n.Name, card.Slot}]
			sort.Slice(bs, func(a, b int) bool { return bs[a].Name < bs[b].Name })
			out[plans.CardID(n.Name, card.Slot)] = cardDigest(n.Name, card, bs, bitstreams)
		}
	}
	return out
}

// changeDigest is the digest of a backend's change that names none: its
// ID, action and what it makes, so that a journal entry of it never
// matches a change that makes something else.
func changeDigest(c *plans.Change) string {
	b, err := json.Marshal(struct {
		ID     string
		Action plans.Action
		After  *plans.Value
	}{c.ID, c.Action, c.After})
	if err != nil {
		panic(err) // plain data always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
