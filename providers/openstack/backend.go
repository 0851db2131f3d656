package openstack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// Name is the backend's name, as --vms takes it.
const Name = "openstack"

// Kind registers the OpenStack backend. It claims the nodes that have a
// hostname (their name in Nova and Placement) when a cloud is configured:
// --os-cloud, or OS_CLOUD (clouds.yaml) or OS_AUTH_URL (the OS_*
// variables) in the environment.
type Kind struct {
	cloud       string
	bootTimeout time.Duration
}

func (k *Kind) Name() string { return Name }

func (k *Kind) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&k.cloud, "os-cloud", "", "the OpenStack cloud (clouds.yaml entry) that manages the VMs of nodes with\na hostname: Nova and Cyborg attach and program their cards, and the plan\nholds the cloud's changes for them (default: OS_CLOUD or the OS_* variables, if set)")
	fs.DurationVar(&k.bootTimeout, "os-boot-timeout", DefaultBootTimeout, "how long a replaced OpenStack server may take to go and to be ACTIVE again")
}

func (k *Kind) Claims(n *spec.Node, env providers.Env) bool {
	return n.Hostname != "" && (k.cloud != "" || env.Var("OS_CLOUD") != "" || env.Var("OS_AUTH_URL") != "")
}

// Open checks that the cloud is configured (clouds.yaml or the OS_*
// variables), without calling it: a missing cloud is an error of the
// command, not an unknown node.
func (k *Kind) Open(env providers.Env) (providers.Backend, error) {
	o := Options{Cloud: k.cloud, BootTimeout: k.bootTimeout}
	if _, _, _, err := authOptions(o); err != nil {
		return nil, err
	}
	return NewBackend(o, env.Log), nil
}

// Backend is one OpenStack cloud as a backend of the engine: a Planner
// (see providers.Planner) for the nodes it owns. It connects on first
// use and is safe for concurrent use.
type Backend struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	clients *Clients
}

var _ providers.Planner = (*Backend)(nil)

// NewBackend returns the backend of the cloud o names. log may be nil.
func NewBackend(o Options, log *slog.Logger) *Backend {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backend{opts: o, log: log}
}

// Name is the backend's name.
func (b *Backend) Name() string { return Name }

// connect logs in once; a failure is not kept, so the next call (with
// its own deadline) tries again.
func (b *Backend) connect(ctx context.Context) (*Clients, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.clients != nil {
		return b.clients, nil
	}
	c, err := Connect(ctx, b.opts)
	if err != nil {
		return nil, err
	}
	b.clients = c
	return c, nil
}

// ObservePlatform observes the cloud for the nodes (State, as JSON).
func (b *Backend) ObservePlatform(ctx context.Context, desired *spec.Fleet, nodes []*spec.Node) (json.RawMessage, error) {
	st, err := b.Observe(ctx, desired, nodes)
	if err != nil {
		return nil, fmt.Errorf("openstack: observe: %w", err)
	}
	return json.Marshal(st)
}

// Plan plans the cloud's changes from an observation ObservePlatform made.
func (b *Backend) Plan(desired *spec.Fleet, nodes []*spec.Node, platform json.RawMessage) ([]plans.Change, error) {
	var st State
	if err := json.Unmarshal(platform, &st); err != nil {
		return nil, fmt.Errorf("openstack: observation: %w", err)
	}
	return Plan(desired, nodes, &st), nil
}
