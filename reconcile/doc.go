/*
Package reconcile is fpgaops's planner: it turns the desired state of an
FPGA fleet and an observation of the live fleet into a plan (plans.Plan):
every change a run would make, in the order it would make them, with what
policy holds back and why.

# The loop

The planner is one step of the engine's loop (reconcile/engine), which
`fpgaops plan`, `apply`, `apply PLANFILE` and the controller all run:

	desired (spec.Fleet) ───────────────┐
	observed (cards, VMs, platforms) ───┼─ NewPlan (pure) ─> plans.Plan ─> execute ─> state
	backends' own changes (Planner) ────┤
	now, inventory (Options.Applied) ───┘

NewPlan does no I/O, reads no clock (the time comes in) and uses no
randomness: the same inputs always give the same plan, byte for byte. Its
vocabulary (Change, Action, Gate, Hold) is in package plans and the policy
it gates by in package policy; observing is the engine's, rendering
reconcile/render's, saved plans reconcile/planfile's, carrying a plan out
reconcile/execute's, and what is kept between runs reconcile/state's.

# Pairing

Planning starts by pairing desired to observed by key, with no decisions
made: nodes by name, cards by their PF's PCI address, bindings by node and
slot, and the PCI functions VMs hold by address (the PF, or a VF listed by
the observed card). What the repository does not mention (other cards,
VMs holding nothing of ours) is left alone. A hostdev on a managed card
that no binding asks for is a leftover: a prune candidate.

# Changes and their order

A change has a canonical ID, "<object>:<step>", where the object is a card
("node/compute-01/fpga/pac0"), a function of a card held by a VM
("node/compute-01/fpga/pac0/vf0/vm/vnf-a"), a VM ("node/du-01/vm/vnf-a")
or a backend's shared object ("image/gzip"). The actions form a closed
set (plans.Action); each documents what its Before and After hold.
Reasons are for people: the executor never reads them.

To change what a card runs, or how many VFs it has, a card goes through the
safety order, each step depending on the one before:

 1. detach its functions from running VMs (disruptive);
 2. VFs off: partial reconfiguration goes through the PF;
 3. program, then read the AFU ID back (the program step verifies);
 4. VFs on;
 5. attach the functions to the VMs the bindings name.

A stopped VM keeps its hostdev in its definition across a reset, so it is
neither detached nor attached: nothing is disrupted. An attach to a VF that
does not exist yet (VFs are off) carries no address; the executor reads it
from the card once VFs are on, since SR-IOV numbering is the hardware's
business. When a VM moves between functions or cards of a node, its attach
waits for its detach. The changes of a plan sort by node, card, step and ID.

# Gates

Gates hold changes back; a held change stays in the plan with its gate and
a reason, so an operator sees what would happen and what stops it:

  - unknown node: nothing at all is planned for a node that could not be
    observed; a report says why;
  - health, board, missing card: reported, never programmed;
  - interface: a bitstream built for another PR interface than the card's
    is never programmed;
  - prune: leftovers are detached only when prune is on, never all managed
    attachments at once unless allowEmpty, and never more than maxShare;
  - protected: a protected binding's VM is never detached (or replaced),
    so its card is not reset under it;
  - window: disruptive changes only inside an open allow window and never
    inside an open deny window (cron schedule, duration, time zone);
  - budget: a group of cards that alone would exceed the disruption budget;
  - dependency: anything that depends on a held change, and detaches that
    only served a reset that cannot happen (no VM is disrupted for nothing);
  - restart: anything that depends on a detach from a running VM whose
    platform cannot detach live (observed.VM.RestartToChange) and that
    waits for the VM's restart (its Restart is plans.RestartWait): the VM
    still holds the function until then. With the policy's vmRestart, in
    a window and for a VM no protected binding names, the change is
    marked plans.RestartVM instead: the executor restarts the VM, a
    disruption that counts against the budget;
  - in-use: a backend's change whose object is in use (a running server
    holds the card, servers boot with the device profile).

# Backends that plan their own changes

Every node is served by a backend (providers.Backend: libvirt, the
simulated fleet, a cloud). For most, the planner makes the card chains
above and the backend attaches and detaches functions. A backend whose
platform attaches and programs its nodes' cards itself (a cloud with a
scheduler: on OpenStack, Nova gives a server its accelerator at boot and
Cyborg programs the card) owns those nodes (Options.Owned): the planner
plans no card chain for them, and still reports what no backend fixes (an
unknown node, a missing, mismatched or unhealthy card). Such a backend
plans the changes of its own objects (Options.Backend, from
providers.Planner.Plan) in the same vocabulary: create, replace and
update, programs, reports. The planner gates them as it gates its own: a
disruptive change (a server replaced) outside the windows or for a
protected binding is held, what depends on a held change is held, and the
budget counts a replaced server as a disrupted VM like a detach. The
objects a backend shares between nodes (images, device profiles, flavors)
carry no node: they sort first and run in a wave of their own, before the
cards that need them. Plan.Owned names the owned nodes, by backend.

# Waves

The runnable changes roll out in waves. Cards joined by a dependency (a VM
moving between them) form a group, and the groups fill waves in plan order
within the budget: at most MaxCardsInFlight cards and MaxDisruptedVMs
disrupted VMs per wave (10 and 1 when the policy leaves them zero), the
same for every backend. A backend's shared objects take the first wave.
The executor runs one wave after the other and the groups of a wave in
parallel.

# Drift

Options.Applied holds, per card, the digest of the desired state the card
last converged to. When a card's desired digest is still that one but the
live card differs, the difference is drift: in drift mode "report" it
becomes one report change and nothing is corrected; in mode "correct" the
card's changes are planned and marked as drift. Without history nothing is
drift: every difference is a change.

An empty AFU ID is unknown, not different: the host cannot read a port
that sits on a VF a VM holds. When Options.Applied shows the card last
converged to its current desired digest, the planner takes the port to run
that bitstream and leaves the VM alone; without that history, the card is
programmed in the safe order.
*/
package reconcile
