package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// Name is the backend's name, as --vms takes it.
const Name = "kubernetes"

// DefaultEvictionTimeout is how long an evicted pod may take to go: its
// termination grace period (30s by default) and the kubelet's work.
const DefaultEvictionTimeout = 5 * time.Minute

// Kind registers the Kubernetes backend. It claims the nodes that name
// their Kubernetes node; the cluster is the one --kubeconfig, KUBECONFIG
// or the in-cluster service account reaches.
type Kind struct {
	kubeconfig      string
	evictionTimeout time.Duration
}

func (k *Kind) Name() string { return Name }

func (k *Kind) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "the kubeconfig of the Kubernetes cluster of the nodes that set kubernetes:\nthe controller publishes their cards as DRA devices (default: KUBECONFIG,\nor the in-cluster service account)")
	fs.DurationVar(&k.evictionTimeout, "k8s-eviction-timeout", DefaultEvictionTimeout, "how long a pod evicted before its card is reprogrammed may take to go")
}

func (k *Kind) Claims(n *spec.Node, _ providers.Env) bool { return n.Kubernetes != "" }

// Open reads the cluster's configuration, without calling it: a missing
// or broken kubeconfig is an error of the command, not an unknown node.
func (k *Kind) Open(env providers.Env) (providers.Backend, error) {
	conf, err := restConfig(k.kubeconfig, env)
	if err != nil {
		return nil, err
	}
	b, err := NewBackend(Options{Config: conf, Agents: agent.NewClient(env.HTTP), EvictionTimeout: k.evictionTimeout}, env.Log)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// restConfig finds the cluster: the --kubeconfig file, else KUBECONFIG
// (a list of files), else the in-cluster service account.
func restConfig(path string, env providers.Env) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	switch {
	case path != "":
	case env.Var("KUBECONFIG") != "":
		rules.Precedence = filepath.SplitList(env.Var("KUBECONFIG"))
	case env.Var("KUBERNETES_SERVICE_HOST") != "":
		conf, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: in-cluster configuration: %w", err)
		}
		return conf, nil
	default:
		return nil, errors.New("kubernetes: no cluster: nodes set kubernetes, and neither --kubeconfig, KUBECONFIG nor an in-cluster service account says which cluster")
	}
	conf, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig: %w", err)
	}
	return conf, nil
}

// Options configure a Backend.
type Options struct {
	// Config reaches the cluster.
	Config *rest.Config
	// Agents reach the nodes' agents: the cards.
	Agents *agent.Client
	// EvictionTimeout bounds how long an evicted pod may take to go;
	// 0 means DefaultEvictionTimeout.
	EvictionTimeout time.Duration
	// PollInterval is how often a wait looks again; 0 means 250ms.
	PollInterval time.Duration
	// HTTPClient fetches bitstreams by URL for the dry run; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
}

// Backend is one cluster as a backend of the engine: a Planner (see
// providers.Planner) for the Kubernetes nodes. It is safe for concurrent
// use.
type Backend struct {
	opts   Options
	client kubernetes.Interface
	log    *slog.Logger
}

var _ providers.Planner = (*Backend)(nil)

// NewBackend makes the backend of the cluster o.Config reaches; it makes
// no call. log may be nil.
func NewBackend(o Options, log *slog.Logger) (*Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Agents == nil {
		o.Agents = agent.NewClient(nil)
	}
	c, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	return &Backend{opts: o, client: c, log: log}, nil
}

// Name is the backend's name.
func (b *Backend) Name() string { return Name }

// ObservePlatform observes the cluster and the nodes' cards (State, as
// JSON).
func (b *Backend) ObservePlatform(ctx context.Context, desired *spec.Fleet, nodes []*spec.Node) (json.RawMessage, error) {
	st, err := b.Observe(ctx, desired, nodes)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: observe: %w", err)
	}
	return json.Marshal(st)
}

// Plan plans the cluster's changes from an observation ObservePlatform
// made.
func (b *Backend) Plan(desired *spec.Fleet, nodes []*spec.Node, platform json.RawMessage) ([]plans.Change, error) {
	var st State
	if err := json.Unmarshal(platform, &st); err != nil {
		return nil, fmt.Errorf("kubernetes: observation: %w", err)
	}
	return Plan(desired, nodes, &st), nil
}

// ErrSchedulerAllocates is what Attach and Detach return: on Kubernetes,
// the scheduler gives pods their devices through their claims; fpgaops
// offers and withdraws devices and evicts pods instead.
var ErrSchedulerAllocates = errors.New("on Kubernetes, the scheduler gives pods their devices through their ResourceClaims")

// ObserveVMs answers no VMs: pods are not VMs, and which pod holds which
// device is in the platform's observation.
func (b *Backend) ObserveVMs(context.Context, *spec.Node) ([]observed.VM, error) { return nil, nil }

// Attach refuses: see ErrSchedulerAllocates. The executor asks it to give
// a pod back the card of a chain that failed after the pod's eviction,
// which cannot be undone: the error says so, for the degraded report.
func (b *Backend) Attach(_ context.Context, node *spec.Node, vm, pci string) error {
	if strings.Contains(vm, "/") {
		return fmt.Errorf("node %s: give %s back to pod %s: the pod was evicted, which cannot be undone; its controller may create it again, and it gets a device of its pool once one is offered: %w",
			node.Name, pci, vm, ErrSchedulerAllocates)
	}
	return fmt.Errorf("node %s: give %s to %s: %w", node.Name, pci, vm, ErrSchedulerAllocates)
}

// Detach refuses: see ErrSchedulerAllocates.
func (b *Backend) Detach(_ context.Context, node *spec.Node, vm, pci string) error {
	return fmt.Errorf("node %s: take %s from %s: %w", node.Name, pci, vm, ErrSchedulerAllocates)
}

func (b *Backend) poll() time.Duration {
	if b.opts.PollInterval > 0 {
		return b.opts.PollInterval
	}
	return 250 * time.Millisecond
}

func (b *Backend) evictionTimeout() time.Duration {
	if b.opts.EvictionTimeout > 0 {
		return b.opts.EvictionTimeout
	}
	return DefaultEvictionTimeout
}
