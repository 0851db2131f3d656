// Package openstack is fpgaops's OpenStack backend (a providers.Planner):
// for the nodes it owns it observes what a cloud with Nova, Cyborg,
// Placement and Glance runs, plans the changes that bring it to the
// desired state in the plan's vocabulary, and applies them one by one when
// the engine's executor asks.
//
// The OpenStack model differs from the libvirt one. A bitstream becomes a
// Glance image (found again by name and digest); a Cyborg device profile
// per bitstream and board asks Placement for a card of that board and PR
// region and names the image in accel:bitstream_id; a Nova flavor carries
// accel:device_profile. A binding with a VM is met when the VM's server
// runs with a flavor naming the right profile; otherwise the server must be
// replaced, because Nova cannot resize or migrate servers with
// accelerators, and a replacement is disruptive. A binding without a VM
// (a preprogrammed card) is met through Cyborg's deployable program action,
// never while a server holds the card; since that action does not record
// what it programmed, fpgaops records it as a trait on the card's resource
// provider, and the function ID Cyborg's agent reads from the card tells
// when it changed since (drift). Cards of boards Cyborg does not expose
// (the DFL boards D5005 and N3000) are reported, nothing else.
//
// The backend follows what the services do, not only their API
// references: cards.go says, with the upstream files, how Cyborg names and
// finds a node's cards, and the fixtures in openstacktest do the same.
//
// The work is split as in the rest of fpgaops: Observe reads (all I/O),
// Plan is a pure function of the desired fleet and the observed State, and
// Apply carries out one change; windows, protected bindings and the budget
// are the engine's, as for every backend. Binding accelerator requests is
// left to Nova: fpgaops only reads ARQs.
package openstack
