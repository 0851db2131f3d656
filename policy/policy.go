// Package policy is a fleet's Policy document compiled for use: its
// maintenance windows parsed once, its disruption budget with the defaults
// filled in, and which bindings and VMs are protected. The planner gates
// the changes of every backend with it, and the executor asks it again
// before each wave whether disruption is still allowed. It does no I/O and
// reads no clock: the time comes in.
package policy

import (
	"fmt"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
)

// Defaults of the disruption budget when the policy leaves it zero: ten
// cards may change at once, and one VM at a time may lose its FPGA.
const (
	DefaultMaxCardsInFlight = 10
	DefaultMaxDisruptedVMs  = 1
)

// Policy is a compiled spec.Policy.
type Policy struct {
	spec    spec.Policy
	windows windows
	budget  plans.Budget
	// protected holds the names of protected bindings; protectedVMs their
	// VMs, as "node/vm".
	protected    map[string]bool
	protectedVMs map[string]bool
}

// Compile compiles the fleet's policy, reporting every bad window at
// once with its position.
func Compile(f *spec.Fleet) (*Policy, error) {
	p := &Policy{spec: f.Policy, protected: map[string]bool{}, protectedVMs: map[string]bool{}}
	ws, err := compileWindows(f.Policy)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", f.Policy.Name, err)
	}
	switch f.Policy.Drift {
	case "", spec.DriftReport, spec.DriftCorrect:
	default:
		return nil, fmt.Errorf("policy %s: drift mode %q: want report or correct", f.Policy.Name, f.Policy.Drift)
	}
	p.windows = ws
	p.budget = plans.Budget{MaxCardsInFlight: f.Policy.Budget.MaxCardsInFlight, MaxDisruptedVMs: f.Policy.Budget.MaxDisruptedVMs}
	if p.budget.MaxCardsInFlight <= 0 {
		p.budget.MaxCardsInFlight = DefaultMaxCardsInFlight
	}
	if p.budget.MaxDisruptedVMs <= 0 {
		p.budget.MaxDisruptedVMs = DefaultMaxDisruptedVMs
	}
	for i := range f.Bindings {
		if b := &f.Bindings[i]; b.Protected {
			p.protected[b.Name] = true
			if b.VM != "" {
				p.protectedVMs[b.Node+"/"+b.VM] = true
			}
		}
	}
	return p, nil
}

// DisruptionAllowed says whether disruptive changes may run at now, and
// if not, why: no allow window is open, or a deny window is.
func (p *Policy) DisruptionAllowed(now time.Time) (bool, string) {
	return p.windows.allowDisruption(now)
}

// Budget is the disruption budget, defaults filled in. It means the same
// for every backend: at most MaxCardsInFlight cards changing and at most
// MaxDisruptedVMs VMs disrupted (a function taken from a running VM, a VM
// restarted or a server replaced) at once, in each wave.
func (p *Policy) Budget() plans.Budget { return p.budget }

// Protected reports whether the binding is protected: fpgaops never
// disrupts the VM it names for it.
func (p *Policy) Protected(binding string) bool { return p.protected[binding] }

// ProtectsVM reports whether a protected binding names the VM on the
// node: fpgaops never restarts it.
func (p *Policy) ProtectsVM(node, vm string) bool { return p.protectedVMs[node+"/"+vm] }

// Drift is the drift mode, "report" when the policy leaves it empty.
func (p *Policy) Drift() spec.DriftMode {
	if p.spec.Drift == "" {
		return spec.DriftReport
	}
	return p.spec.Drift
}

// Prune is the policy's prune rule.
func (p *Policy) Prune() spec.Prune { return p.spec.Prune }

// VMRestart reports whether the policy lets fpgaops restart a VM whose
// platform cannot change it live.
func (p *Policy) VMRestart() bool { return p.spec.VMRestart }

// Name is the Policy document's name.
func (p *Policy) Name() string { return p.spec.Name }
