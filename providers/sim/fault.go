package sim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
)

// FaultOp names the kind of change a targeted fault fails.
type FaultOp string

const (
	FaultProgram FaultOp = "program"
	FaultSetVFs  FaultOp = "set-vfs"
	FaultAttach  FaultOp = "attach"
	FaultDetach  FaultOp = "detach"
)

// Fault makes the next Count changes of kind Op to one card fail with a
// non-transient error (500 internal): a program, a change of its VFs, or
// an attach or detach of one of its functions. A failed attach, detach or
// VF change changes nothing. A failed program fails at the PR itself,
// after the checks and the modelled time: the region keeps what it ran,
// or with EmptyRegion reads an all-zero AFU ID, as a PR that failed
// halfway leaves it; VFs the program turned off stay off, as the agent
// leaves them after a failed PR. A request that would change nothing (an
// attach of a function the VM already holds) does not use up a fault.
type Fault struct {
	Op FaultOp `json:"op"`
	// PCI is the card's PF address.
	PCI string `json:"pci"`
	// Count is how many changes fail; 0 means 1.
	Count int `json:"count,omitempty"`
	// Message is the error's text; empty means "injected fault".
	Message     string `json:"error,omitempty"`
	EmptyRegion bool   `json:"emptyRegion,omitempty"`
}

// errInjected marks the errors of targeted faults, so that they are
// counted as failed, not refused.
var errInjected = errors.New("injected fault")

func (f Fault) err() error {
	if f.Message == "" {
		return errInjected
	}
	return fmt.Errorf("%w: %s", errInjected, f.Message)
}

// InjectFault arms a targeted fault on a card of the node, after the
// faults already armed there. Every mistake in f is reported at once.
func (s *Sim) InjectFault(name string, f Fault) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	var bad []string
	switch f.Op {
	case FaultProgram, FaultSetVFs, FaultAttach, FaultDetach:
	default:
		bad = append(bad, fmt.Sprintf("op %q: want program, set-vfs, attach or detach", f.Op))
	}
	switch {
	case !fpga.IsPCIAddress(f.PCI):
		bad = append(bad, fmt.Sprintf("pci %q: want a card's PF address in the form 0000:5e:00.0", f.PCI))
	case n.card(f.PCI) == nil:
		bad = append(bad, fmt.Sprintf("pci %s: no FPGA card there", f.PCI))
	}
	if f.Count < 0 {
		bad = append(bad, fmt.Sprintf("count %d: want 1 or more (0 means 1)", f.Count))
	}
	if f.EmptyRegion && f.Op != FaultProgram {
		bad = append(bad, "emptyRegion: only a program can leave the region empty")
	}
	if len(bad) > 0 {
		return agent.Errorf(http.StatusBadRequest, agent.CodeBadRequest, "node %s: fault: %s", name, strings.Join(bad, "; "))
	}
	if f.Count == 0 {
		f.Count = 1
	}
	n.mu.Lock()
	n.faults = append(n.faults, f)
	n.mu.Unlock()
	return nil
}

// takeFault uses up one of the faults armed for this kind of change to c,
// if any, and returns it. Callers hold n.mu.
func (n *node) takeFault(op FaultOp, c *card) (Fault, bool) {
	for i := range n.faults {
		f := &n.faults[i]
		if f.Op != op || f.PCI != c.pci {
			continue
		}
		got := *f
		if f.Count--; f.Count == 0 {
			n.faults = append(n.faults[:i], n.faults[i+1:]...)
		}
		return got, true
	}
	return Fault{}, false
}

// FaultsAnswer is the answer to POST /sim/nodes/{node}/faults: the node's
// faults still armed.
type FaultsAnswer struct {
	Pending []Fault `json:"pending"`
}

func (s *Sim) injectFault(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	var f Fault
	if err := s.api.Decode(w, r, &f); err != nil {
		s.api.Fail(w, r, err)
		return
	}
	if err := s.InjectFault(name, f); err != nil {
		s.api.Fail(w, r, err)
		return
	}
	n, _ := s.node(name)
	n.mu.Lock()
	ans := FaultsAnswer{Pending: append([]Fault{}, n.faults...)}
	n.mu.Unlock()
	agent.WriteJSON(w, http.StatusOK, ans)
}
