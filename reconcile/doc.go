/*
Package reconcile turns the desired state of an FPGA fleet and an
observation of the live fleet into a plan: every change a run would make,
in the order it would make them, with what policy holds back and why.

# The loop

	desired (spec.Fleet) ─┐
	                      ├─ NewPlan (pure) ─> Plan ─> execute.Executor ─> Report
	observed (Observe)  ──┘       ▲
	now, Options.Applied ─────────┘

Observe is the only function here that does I/O: it asks a
providers.Provider about every node, a bounded number at once, and marks a
node that does not answer in time as unknown, with the reason. NewPlan does
no I/O, reads no clock (the time comes in) and uses no randomness: the same
inputs always give the same plan, byte for byte. Rendering lives in
reconcile/render, saved plans in reconcile/planfile, and carrying a plan out
in reconcile/execute.

# Pairing

Planning starts by pairing desired to observed by key, with no decisions
made: nodes by name, cards by their PF's PCI address, bindings by node and
slot, and the PCI functions VMs hold by address (the PF, or a VF listed by
the observed card). What the repository does not mention (other cards,
VMs holding nothing of ours) is left alone. A hostdev on a managed card
that no binding asks for is a leftover: a prune candidate.

# Changes and their order

A change has a canonical ID, "<object>:<step>", where the object is a card
("node/compute-01/fpga/pac0") or a function of a card held by a VM
("node/compute-01/fpga/pac0/vf0/vm/vnf-a"). The actions form a closed set
(Action); each documents what its Before and After hold. Reasons are for
people: the executor never reads them.

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
  - protected: a protected binding's VM is never detached, so its card is
    not reset under it;
  - window: disruptive changes only inside an open allow window and never
    inside an open deny window (cron schedule, duration, time zone);
  - budget: a group of cards that alone would exceed the disruption budget;
  - dependency: anything that depends on a held change, and detaches that
    only served a reset that cannot happen (no VM is disrupted for nothing);
  - restart: anything that depends on a detach from a running VM whose
    platform cannot detach live (observed.VM.RestartToChange) and that
    waits for the VM's restart (Change.Restart is RestartWait): the VM
    still holds the function until then. With the policy's vmRestart, in a
    window and for a VM no protected binding names, the change is marked
    RestartVM instead: the executor restarts the VM, a disruption that
    counts against the budget.

# Nodes OpenStack manages

On OpenStack, Nova and Cyborg own a card's attach and programming: a
server gets its accelerator at boot from its flavor's device profile,
Cyborg programs the card through the deployable, and Nova cannot move an
accelerator onto a running server. So when a cloud is configured
(Options.OpenStack), a node with a hostname (its name in Nova) is
cloud-managed (CloudManaged): the planner plans no detach, VFs, program or
attach for its cards, and does not prune their hostdevs. It still reports
what no cloud fixes: an unknown node, a missing, mismatched or unhealthy
card. Plan.CloudManaged names these nodes; the OpenStack provider's plan
(images, device profiles, flavors, programmed pool cards, replaced
servers) covers them, and the command shows both as one plan with one
summary. Without a cloud a hostname changes nothing.

# Waves

The runnable changes roll out in waves. Cards joined by a dependency (a VM
moving between them) form a group, and the groups fill waves in plan order
within the budget: at most MaxCardsInFlight cards and MaxDisruptedVMs
disrupted VMs per wave (10 and 1 when the policy leaves them zero). The
executor runs one wave after the other and the groups of a wave in
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
