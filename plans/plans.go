// Package plans is the vocabulary of a plan, shared by the planner, the
// backends that plan their own objects, the executor, the renderers and
// saved plans: a Plan is a list of Changes, each with one Action from a
// closed set, the Step it takes in its card's safety order, its Before and
// After, what it depends on, and, when a gate holds it back, the Hold. It
// holds data and canonical IDs only: no planning, no I/O.
package plans

import (
	"time"

	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
)

// FormatVersion is the version of the plan's JSON format (docs/plan-format.md).
// It changes only when a field changes meaning or goes away.
const FormatVersion = 2

// Action is what a change does. The set is closed; each action's contract
// for Before and After is spelled out here and relied on by the executor
// and the renderers.
type Action string

const (
	// ActionNoop: the object already matches. Before and After are equal.
	ActionNoop Action = "noop"
	// ActionDetach takes a function away from a VM. Before names the VM and
	// the function it holds; After is nil.
	ActionDetach Action = "detach"
	// ActionSetVFs turns SR-IOV off or on. Before.VFs is the count now,
	// After.VFs the count wanted (0 for off).
	ActionSetVFs Action = "set-vfs"
	// ActionProgram loads a bitstream into the card's PR region and reads
	// the AFU ID back. Before.AFUID is what runs now; After names the
	// bitstream, its digest and AFU ID.
	ActionProgram Action = "program"
	// ActionAttach gives a function to a VM. Before is nil; After names the
	// VM and the function. After.PCI is empty when the function is a VF
	// that does not exist yet: the executor resolves it once VFs are on.
	ActionAttach Action = "attach"
	// ActionReport changes nothing: it shows a difference fpgaops will not
	// fix in this run (drift in report mode, an unknown node, an unhealthy
	// or missing card). Before is what was observed (nil if nothing), After
	// what the repository asks for (nil if nothing).
	ActionReport Action = "report"

	// The actions below are on the objects of a backend that attaches and
	// programs its nodes' cards itself (a cloud: images, device profiles,
	// flavors, servers). Their Before and After carry the object's
	// attributes in Attrs, and VM where a VM is concerned.

	// ActionCreate makes an object that does not exist. Before is nil.
	ActionCreate Action = "create"
	// ActionReplace deletes an object and makes it again (a device profile
	// that cannot be updated, a server that needs another flavor). Before
	// is the object now, After the one made. It is disruptive when a
	// running VM is the object or uses it.
	ActionReplace Action = "replace"
	// ActionUpdate changes an object in place (a card's Placement traits).
	ActionUpdate Action = "update"
)

// Actions lists every action in the order a card's changes run.
var Actions = []Action{ActionReport, ActionCreate, ActionDetach, ActionSetVFs, ActionProgram, ActionAttach, ActionReplace, ActionUpdate, ActionNoop}

// Step is a change's place in a card's safety order: detach, VFs off,
// program (with verify), VFs on, attach.
type Step string

// A backend's objects take the steps create (objects others need, made
// first), replace and update.
const (
	StepReport  Step = "report"
	StepCreate  Step = "create"
	StepDetach  Step = "detach"
	StepVFsOff  Step = "vfs-off"
	StepProgram Step = "program"
	StepVFsOn   Step = "vfs-on"
	StepAttach  Step = "attach"
	StepReplace Step = "replace"
	StepUpdate  Step = "update"
	StepNoop    Step = "noop"
)

// steps ranks the steps; changes sort by it within an object's node and
// card.
var steps = map[Step]int{
	StepReport: 0, StepCreate: 1, StepDetach: 2, StepVFsOff: 3, StepProgram: 4,
	StepVFsOn: 5, StepAttach: 6, StepReplace: 7, StepUpdate: 8, StepNoop: 9,
}

// Order is the step's rank within a card; changes sort by it.
func (s Step) Order() int {
	if o, ok := steps[s]; ok {
		return o
	}
	return len(steps)
}

// Value is one side (Before or After) of a change. Only the fields the
// action's contract names are set.
type Value struct {
	// Bitstream, SHA256 and AFUID describe what a PR region runs or should
	// run.
	Bitstream string `json:"bitstream,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	AFUID     string `json:"afuID,omitempty"`
	// VFs is an SR-IOV VF count.
	VFs *int `json:"vfs,omitempty"`
	// VM, Function and PCI describe a function held by a VM.
	VM       string `json:"vm,omitempty"`
	Running  bool   `json:"running,omitempty"`
	Function string `json:"function,omitempty"`
	PCI      string `json:"pci,omitempty"`
	// Note carries what a report shows when no field fits ("unknown:
	// agent unreachable").
	Note string `json:"note,omitempty"`
	// Attrs are the attributes of a backend's object (an image's name and
	// digest, a flavor's size): shown in the plan, and read back by the
	// backend that carries the change out. The core never interprets them.
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Gate names the rule that holds a change back. What fpgaops cannot change
// at all (an unknown node, a missing card or another board) is not held
// but reported (ActionReport).
type Gate string

const (
	// GateInterface: the card's PR interface differs from the bitstream's.
	GateInterface Gate = "interface"
	// GateMissing: the card or the VM is not on the node.
	GateMissing Gate = "missing"
	// GateWindow: a disruptive change outside the maintenance windows.
	GateWindow Gate = "window"
	// GateBudget: the change alone needs more than the disruption budget.
	GateBudget Gate = "budget"
	// GatePrune: removal while prune is off, or beyond its limits.
	GatePrune Gate = "prune"
	// GateProtected: it would detach a protected binding.
	GateProtected Gate = "protected"
	// GateDependency: a change it depends on is held, or it only exists to
	// serve a change that is held.
	GateDependency Gate = "dependency"
	// GateRestart: it depends on a change that waits for a VM's restart
	// (RestartWait): until the VM restarts it still holds the function, so
	// its card is not reset and the function is not given to another VM.
	GateRestart Gate = "restart"
	// GateInUse: what the change would replace or program is in use (a
	// running server holds the card, servers boot with the device
	// profile); a backend holds it so.
	GateInUse Gate = "in-use"
	// GateHealth: the card reports a problem (a fatal error register, a
	// temperature at its critical limit) or is quarantined: it is neither
	// programmed nor given to VMs.
	GateHealth Gate = "health"
	// GateRollout: the policy's rollout has not released the card yet,
	// is paused, or failed.
	GateRollout Gate = "rollout"
	// GateApproval: a disruptive change that waits for a person to
	// approve the controller's run (the policy's approval: manual).
	GateApproval Gate = "approval"
)

// Restart says how an attach or detach to a running VM whose platform
// cannot change it live (observed.VM.RestartToChange) takes effect. The
// change itself is made in the VM's definition either way.
type Restart string

const (
	// RestartWait: the change waits for the VM's restart, which fpgaops
	// does not do (the policy's vmRestart is off, or no maintenance window
	// is open). It is not a failure; until then the running VM keeps what
	// it had.
	RestartWait Restart = "wait"
	// RestartVM: the executor stops and starts the VM so that the change
	// takes effect. The change is then disruptive: it runs only within a
	// maintenance window and counts against the disruption budget.
	RestartVM Restart = "restart"
)

// Hold says why a change is held back. Why is for display only.
type Hold struct {
	Gate Gate   `json:"gate"`
	Why  string `json:"why"`
}

// Change is one step of the plan.
type Change struct {
	// ID is canonical and unique in the plan: the object's ID, a colon, the
	// step ("node/compute-01/fpga/pac0:program",
	// "node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach").
	ID     string `json:"id"`
	Action Action `json:"action"`
	Step   Step   `json:"step"`
	// Object is the ID of what the change acts on.
	Object string `json:"object"`
	Node   string `json:"node"`
	// Card is the card's slot, and CardPCI its PF address; empty for a
	// change that concerns a whole node.
	Card    string `json:"card,omitempty"`
	CardPCI string `json:"cardPCI,omitempty"`
	// Binding is the binding the change serves, if any.
	Binding string `json:"binding,omitempty"`
	// Backend names the backend that planned the change and carries it
	// out (a cloud's objects); empty for the card chains the planner makes
	// itself.
	Backend string `json:"backend,omitempty"`
	Before  *Value `json:"before,omitempty"`
	After   *Value `json:"after,omitempty"`
	// Reason explains the change to a reader. It is display only: the
	// executor never looks at it.
	Reason string `json:"reason,omitempty"`
	// DependsOn are the IDs of the changes that must succeed first.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Disruptive is true when the change takes a function from a running
	// VM, restarts a VM (Restart is RestartVM), or replaces a running VM.
	Disruptive bool `json:"disruptive,omitempty"`
	// Restart is set on an attach or detach to a running VM that takes
	// the change only at its restart: whether the change waits for that
	// restart or the executor restarts the VM.
	Restart Restart `json:"restart,omitempty"`
	// Drift is true when the object matched the repository at the last
	// apply and has changed since.
	Drift bool `json:"drift,omitempty"`
	// Held is set when a gate holds the change back; it is then not run.
	Held *Hold `json:"held,omitempty"`
	// Wave is the wave (1, 2, ...) of the disruption budget the change
	// runs in; 0 when it is not run (held, report, noop).
	Wave int `json:"wave,omitempty"`
	// RolloutStep is the step (1, 2, ...) of the policy's rollout that
	// releases the change's card; 0 outside a rollout.
	RolloutStep int `json:"rolloutStep,omitempty"`
	// Digest is the desired-state digest of the card the change belongs
	// to. With ID it keys the executor's journal.
	Digest string `json:"digest,omitempty"`
}

// VM names the VM an attach or detach concerns, or "".
func (c *Change) VM() string {
	switch {
	case c.Before != nil && c.Before.VM != "":
		return c.Before.VM
	case c.After != nil:
		return c.After.VM
	}
	return ""
}

// Runnable reports whether the executor runs the change.
func (c *Change) Runnable() bool {
	return c.Held == nil && c.Action != ActionNoop && c.Action != ActionReport
}

// Plan is what a run would do: every change, in a deterministic order
// (node, card, step, name), with what made it and what holds it back.
type Plan struct {
	FormatVersion int `json:"formatVersion"`
	// Revision is the desired state's revision, when known.
	Revision string `json:"revision,omitempty"`
	// DesiredDigest is a digest of the desired fleet the plan was made
	// from; ObservedFingerprint the fingerprint of the observation.
	DesiredDigest       string    `json:"desiredDigest"`
	ObservedFingerprint string    `json:"observedFingerprint"`
	CreatedAt           time.Time `json:"createdAt"`
	// Drift is the drift mode the plan was made under.
	Drift string `json:"drift"`
	// Budget is the budget in force, defaults filled in.
	Budget  Budget   `json:"budget"`
	Waves   int      `json:"waves"`
	Changes []Change `json:"changes"`
	Summary Summary  `json:"summary"`
	// Owned lists, by backend, the nodes whose cards that backend attaches
	// and programs itself (a cloud's scheduler), sorted: the plan holds
	// the backend's changes and reports for them, never a card chain.
	Owned map[string][]string `json:"owned,omitempty"`
	// Rollout is the policy's rollout as this plan leaves it, when the
	// policy has one and the revision reprograms cards.
	Rollout *rollout.State `json:"rollout,omitempty"`
}

// Budget is the disruption budget the plan's waves respect.
type Budget struct {
	MaxCardsInFlight int `json:"maxCardsInFlight"`
	MaxDisruptedVMs  int `json:"maxDisruptedVMs"`
}

// ByAction counts changes by the action they take, one counter per
// action that runs.
type ByAction struct {
	Program int `json:"program"`
	SetVFs  int `json:"setVFs"`
	Attach  int `json:"attach"`
	Detach  int `json:"detach"`
	Create  int `json:"create"`
	Replace int `json:"replace"`
	Update  int `json:"update"`
}

// Add counts one change of action a; actions that do not run count
// nowhere.
func (b *ByAction) Add(a Action) {
	if n := b.counter(a); n != nil {
		*n++
	}
}

func (b *ByAction) counter(a Action) *int {
	switch a {
	case ActionProgram:
		return &b.Program
	case ActionSetVFs:
		return &b.SetVFs
	case ActionAttach:
		return &b.Attach
	case ActionDetach:
		return &b.Detach
	case ActionCreate:
		return &b.Create
	case ActionReplace:
		return &b.Replace
	case ActionUpdate:
		return &b.Update
	}
	return nil
}

// Each calls fn for every action that runs, in the order of Actions.
func (b ByAction) Each(fn func(a Action, n int)) {
	for _, a := range Actions {
		if n := b.counter(a); n != nil {
			fn(a, *n)
		}
	}
}

// Total is the sum of the counters.
func (b ByAction) Total() int {
	return b.Program + b.SetVFs + b.Attach + b.Detach + b.Create + b.Replace + b.Update
}

// Summary counts the changes that will run, by action, and the rest.
type Summary struct {
	ByAction
	Report int `json:"report"`
	Held   int `json:"held"`
	Noop   int `json:"noop"`
}

// Summarize counts changes: held ones only as held, whatever their action.
func Summarize(changes []Change) Summary {
	var s Summary
	for i := range changes {
		c := &changes[i]
		switch {
		case c.Action == ActionNoop:
			s.Noop++
		case c.Action == ActionReport:
			s.Report++
		case c.Held != nil:
			s.Held++
		default:
			s.Add(c.Action)
		}
	}
	return s
}

// HasChanges reports whether the fleet differs from the desired state in
// any way the plan shows, run or held or reported.
func (p *Plan) HasChanges() bool {
	for i := range p.Changes {
		if p.Changes[i].Action != ActionNoop {
			return true
		}
	}
	return false
}

// Change returns the change with this ID.
func (p *Plan) Change(id string) (*Change, bool) {
	for i := range p.Changes {
		if p.Changes[i].ID == id {
			return &p.Changes[i], true
		}
	}
	return nil, false
}

// CardID is the canonical ID of a card as an object of a plan, the same
// in every message: spec.CardID.
func CardID(node, slot string) string { return spec.CardID(node, slot) }

// AttachmentID is the canonical ID of "this function of this card, held by
// this VM". fn is "pf" or "vfN".
func AttachmentID(node, slot, fn, vm string) string {
	return CardID(node, slot) + "/" + fn + "/vm/" + vm
}

// VMID is the canonical ID of a VM of a node, as an object of a plan (a
// server a backend replaces).
func VMID(node, vm string) string { return NodeID(node) + "/vm/" + vm }

// NodeID is the canonical ID of a node as an object of a plan.
func NodeID(node string) string { return "node/" + node }
