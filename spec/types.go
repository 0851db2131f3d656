package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the only apiVersion the loader accepts.
const APIVersion = "fpgaops/v1"

// Kinds of document in a fleet repository.
const (
	KindNode      = "Node"
	KindBitstream = "Bitstream"
	KindBinding   = "Binding"
	KindPolicy    = "Policy"
)

// Pos is a position in a file of the fleet repository. File is relative to
// the repository root and uses forward slashes.
type Pos struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Fleet is the desired state of a whole fleet: every document of one
// revision of the repository, checked. Slices are sorted by name.
type Fleet struct {
	// Root is the repository directory the fleet was loaded from.
	Root string `json:"-"`
	// Revision is the commit the fleet was loaded from, when known.
	Revision   string      `json:"revision,omitempty"`
	Nodes      []Node      `json:"nodes"`
	Bitstreams []Bitstream `json:"bitstreams"`
	Bindings   []Binding   `json:"bindings"`
	Policy     Policy      `json:"policy"`
}

// Node is a compute host with FPGA cards.
type Node struct {
	Name string `json:"name"`
	// Endpoint is the URL of the node's agent (or of a sim serving it).
	Endpoint string `json:"endpoint,omitempty"`
	// Libvirt is the libvirt URI that reaches the node's VMs, if libvirt
	// manages them.
	Libvirt string `json:"libvirt,omitempty"`
	// Hostname is the node's name in OpenStack (Nova compute host,
	// Placement provider), if OpenStack manages its VMs.
	Hostname string `json:"hostname,omitempty"`
	// ResourceProvider is the name of the node's compute resource
	// provider in Placement, where it is not Hostname: Cyborg finds it by
	// its agent's configured host name, its cards' providers by
	// DeviceHostname, the name the agent's machine calls itself.
	ResourceProvider string `json:"resourceProvider,omitempty"`
	DeviceHostname   string `json:"deviceHostname,omitempty"`
	// Kubernetes is the node's name in the Kubernetes cluster the
	// controller reaches, if its cards go to pods through pools.
	Kubernetes string            `json:"kubernetes,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	FPGAs      []FPGA            `json:"fpgas"`
	Pos        Pos               `json:"-"`
}

// FPGA is one card of a node, named by its slot.
type FPGA struct {
	Slot string `json:"slot"`
	// PCI is the physical function's address, lowercase, with domain:
	// "0000:5e:00.0".
	PCI   string `json:"pci"`
	Board Board  `json:"board"`
	// VFs is how many SR-IOV virtual functions the card should have on.
	VFs int `json:"vfs"`
	// InterfaceID is the PR interface ID the card is expected to have
	// (normalised), empty if not declared.
	InterfaceID string `json:"interfaceID,omitempty"`
	Pos         Pos    `json:"-"`
}

// Bitstream is a named partial-reconfiguration image.
type Bitstream struct {
	Name string `json:"name"`
	// File is the GBS file's path relative to the repository root, or "".
	File string `json:"file,omitempty"`
	// URL is where the image can be fetched when it is not in the
	// repository.
	URL string `json:"url,omitempty"`
	// SHA256 is the image's digest, lowercase hex.
	SHA256 string `json:"sha256"`
	// InterfaceID and AFUID are normalised; for a file they come from its
	// GBS metadata.
	InterfaceID string `json:"interfaceID"`
	AFUID       string `json:"afuID"`
	Size        int64  `json:"size,omitempty"`
	Pos         Pos    `json:"-"`
}

// Binding says: this VM gets this function of this card, with this
// bitstream loaded. A binding without a VM keeps the card programmed; on
// a Kubernetes node, one with a pool offers the function to that pool's
// pods.
type Binding struct {
	Name      string   `json:"name"`
	Node      string   `json:"node"`
	FPGA      string   `json:"fpga"`
	Function  Function `json:"function"`
	VM        string   `json:"vm,omitempty"`
	Pool      string   `json:"pool,omitempty"`
	Bitstream string   `json:"bitstream"`
	// Protected bindings are never detached or pruned by fpgaops.
	Protected bool `json:"protected,omitempty"`
	Pos       Pos  `json:"-"`
}

// Function names a PCI function of a card: the physical function or one of
// its virtual functions.
type Function struct {
	PF bool `json:"-"`
	VF int  `json:"-"`
}

// PF is the card's physical function.
var PF = Function{PF: true}

// VF returns the card's n-th virtual function.
func VF(n int) Function { return Function{VF: n} }

func (f Function) String() string {
	if f.PF {
		return "pf"
	}
	return "vf" + strconv.Itoa(f.VF)
}

// ParseFunction parses "pf" or "vfN".
func ParseFunction(s string) (Function, error) {
	if s == "pf" {
		return PF, nil
	}
	if n, ok := strings.CutPrefix(s, "vf"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 0 && strconv.Itoa(i) == n {
			return VF(i), nil
		}
	}
	return Function{}, fmt.Errorf("function %q: want pf or vfN", s)
}

func (f Function) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

func (f *Function) UnmarshalText(b []byte) error {
	v, err := ParseFunction(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// ID is the binding's canonical ID, used as its key in plans, logs and
// errors.
func (b Binding) ID() string { return "binding/" + b.Name }

// CardID is the canonical ID of a card, in plans, logs and errors alike:
// "node/compute-01/fpga/pac0".
func CardID(node, slot string) string { return "node/" + node + "/fpga/" + slot }

// ParseCardID splits a card ID into its node and slot.
func ParseCardID(id string) (node, slot string, ok bool) {
	p := strings.Split(id, "/")
	if len(p) != 4 || p[0] != "node" || p[2] != "fpga" || p[1] == "" || p[3] == "" {
		return "", "", false
	}
	return p[1], p[3], true
}

// Board is a supported FPGA card model.
type Board string

const (
	BoardPACA10 Board = "pac-a10"
	BoardD5005  Board = "pac-d5005"
	BoardN3000  Board = "pac-n3000"
)

// BoardInfo is what fpgaops knows of a board model.
type BoardInfo struct {
	Board       Board
	Description string
	Vendor      uint16
	PFDevice    uint16
	VFDevice    uint16
	// MaxVFs is the SR-IOV VF limit: one VF per AFU port, and these boards
	// have one port.
	MaxVFs int
}

// Boards lists the supported boards in a stable order.
var Boards = []BoardInfo{
	{BoardPACA10, "Intel PAC with Arria 10 GX", 0x8086, 0x09c4, 0x09c5, 1},
	{BoardD5005, "Intel PAC D5005 (Stratix 10)", 0x8086, 0x0b2b, 0x0b2c, 1},
	{BoardN3000, "Intel PAC N3000", 0x8086, 0x0b30, 0x0b31, 1},
}

// LookupBoard returns the board's info.
func LookupBoard(b Board) (BoardInfo, bool) {
	for _, i := range Boards {
		if i.Board == b {
			return i, true
		}
	}
	return BoardInfo{}, false
}

// BoardByDevice returns the board whose PF or VF has this PCI device ID.
func BoardByDevice(vendor, device uint16) (BoardInfo, bool) {
	for _, i := range Boards {
		if i.Vendor == vendor && (i.PFDevice == device || i.VFDevice == device) {
			return i, true
		}
	}
	return BoardInfo{}, false
}

// DriftMode says what a run does with drift.
type DriftMode string

const (
	DriftReport  DriftMode = "report"
	DriftCorrect DriftMode = "correct"
)

// ApprovalMode says whether the controller waits for a person before it
// disrupts a VM.
type ApprovalMode string

const (
	ApprovalAuto   ApprovalMode = "auto"
	ApprovalManual ApprovalMode = "manual"
)

// Policy gates what a run may change and when.
type Policy struct {
	Name string `json:"name"`
	// Schedule is the cron expression for scheduled runs.
	Schedule string    `json:"schedule,omitempty"`
	Windows  []Window  `json:"windows,omitempty"`
	Budget   Budget    `json:"budget"`
	Prune    Prune     `json:"prune"`
	Drift    DriftMode `json:"drift"`
	// VMRestart lets a run stop and start a running VM whose platform
	// cannot attach or detach its devices live, so that a change made to
	// its definition takes effect. Off by default: the change then waits
	// for the VM's next restart. A restart is disruptive: it happens only
	// within the maintenance windows and counts against the budget.
	VMRestart bool `json:"vmRestart,omitempty"`
	// Approval, when manual, has the controller plan the disruptive
	// changes and wait for a person to approve the run (fpgaops approve)
	// before it makes them; the other changes go ahead. Auto, the
	// default, makes them within the windows and the budget.
	Approval ApprovalMode `json:"approval,omitempty"`
	// Limits bound what the fleet's files may hold.
	Limits Limits `json:"limits,omitzero"`
	// Rollout, when set, takes a revision's new bitstreams to the fleet in
	// steps, each baked and checked before the next; nil applies every
	// card a plan changes at once.
	Rollout *Rollout `json:"rollout,omitempty"`
	Pos     Pos      `json:"-"`
}

// Rollout is how a revision's new bitstreams reach the fleet: in steps of
// cards, each step's cards healthy for Bake before the next starts.
type Rollout struct {
	// Steps are the cumulative cards of each step: a count ("1") or a
	// share of the cards the revision reprograms ("10%"); the last is
	// "100%".
	Steps []string `json:"steps"`
	// Bake is how long a step's cards must stay healthy.
	Bake Duration `json:"bake,omitempty"`
	// OnFailure is what a failed step does: revert its cards to the last
	// good revision's images (the default), or halt.
	OnFailure RolloutFailure `json:"onFailure,omitempty"`
	// MaxUnhealthy is how many of a step's cards may fail their checks
	// before the step fails.
	MaxUnhealthy int `json:"maxUnhealthy,omitempty"`
	// SpreadBy is a node label key: steps take cards from each of its
	// values in turn (a rack), then from each node. Empty spreads over
	// nodes only.
	SpreadBy string `json:"spreadBy,omitempty"`
	// Checks are what the repository adds to the card's own health.
	Checks []Check `json:"checks,omitempty"`
}

// RolloutFailure says what a failed rollout step does.
type RolloutFailure string

const (
	RolloutRevert RolloutFailure = "revert"
	RolloutHalt   RolloutFailure = "halt"
)

// DefaultBake is a rollout step's bake time when the policy names none.
const DefaultBake = 10 * time.Minute

// BakeTime is the rollout's bake, or DefaultBake.
func (r *Rollout) BakeTime() time.Duration {
	if r.Bake > 0 {
		return time.Duration(r.Bake)
	}
	return DefaultBake
}

// Failure is the rollout's OnFailure, or revert.
func (r *Rollout) Failure() RolloutFailure {
	if r.OnFailure == "" {
		return RolloutRevert
	}
	return r.OnFailure
}

// Check is a health check a rollout runs on each step: exactly one of an
// HTTP probe the node's agent makes to a workload on the node, or a
// Prometheus query that must return a result.
type Check struct {
	Name       string           `json:"name"`
	HTTP       *HTTPCheck       `json:"http,omitempty"`
	Prometheus *PrometheusCheck `json:"prometheus,omitempty"`
}

// HTTPCheck is a GET the node's agent makes, on the node's loopback, for
// each card of a step; {slot} and {pci} in URL name the card. It passes
// on Status (200 unless set) within Timeout (2s unless set).
type HTTPCheck struct {
	URL     string   `json:"url"`
	Status  int      `json:"status,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
}

// PrometheusCheck is an instant query against the controller's
// Prometheus; it passes when the result is not empty, as an alerting
// rule fires when its query returns something, inverted: write the
// condition that must hold ("sum(rate(errors[5m])) < 1").
type PrometheusCheck struct {
	Query string `json:"query"`
}

// WindowKind says whether a window allows or denies disruptive changes.
type WindowKind string

const (
	WindowAllow WindowKind = "allow"
	WindowDeny  WindowKind = "deny"
)

// Window is a maintenance window: it opens at each time Schedule (a
// five-field cron expression) fires, in TimeZone, and stays open for
// Duration.
type Window struct {
	Kind     WindowKind `json:"kind"`
	Schedule string     `json:"schedule"`
	Duration Duration   `json:"duration"`
	TimeZone string     `json:"timezone,omitempty"`
	Pos      Pos        `json:"-"`
}

// Budget limits disruption. Zero means the default (see the planner).
type Budget struct {
	// MaxDisruptedVMs is how many VMs may lose an FPGA at once.
	MaxDisruptedVMs int `json:"maxDisruptedVMs,omitempty"`
	// MaxCardsInFlight is how many cards may be changing at once.
	MaxCardsInFlight int `json:"maxCardsInFlight,omitempty"`
}

// Prune governs removal of functions no binding asks for.
type Prune struct {
	Enabled bool `json:"enabled"`
	// MaxShare is the largest share (0..1] of managed attachments one run
	// may remove; 0 means no limit beyond "not all of them".
	MaxShare float64 `json:"maxShare,omitempty"`
	// AllowEmpty lets a run remove every managed attachment.
	AllowEmpty bool `json:"allowEmpty,omitempty"`
}
