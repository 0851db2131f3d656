// Package dra is the node agent's Dynamic Resource Allocation kubelet
// plugin for the driver fpga.fpgaops.io. The controller publishes each
// Kubernetes node's FPGA functions as devices of a ResourceSlice
// (providers/kubernetes); the scheduler allocates them to ResourceClaims;
// then the kubelet asks this plugin, over gRPC, to prepare the devices of
// a pod's claims before its containers start, and to unprepare them after.
//
// Preparing writes a CDI spec per claim that gives the containers the
// function's device nodes: the AFU port (/dev/dfl-port.N, or
// /dev/intel-fpga-port.N) for a whole card or a VF the host holds, the
// VFIO group (/dev/vfio/N and /dev/vfio/vfio) for a VF bound to vfio-pci.
// The plugin reads the cards through the same fpga.Host as the agent's
// API, refuses a device of another node, an unhealthy card, and a device
// another claim holds, and never changes a card.
package dra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/klog/v2"
	cdi "tags.cncf.io/container-device-interface/specs-go"

	"github.com/fpgaops/fpgaops/fpga"
)

// DriverName is the DRA driver fpgaops's devices belong to.
const DriverName = "fpga.fpgaops.io"

// CDIKind is the CDI kind of the devices the plugin prepares.
const CDIKind = DriverName + "/fpga"

// Default directories, as the kubelet and container runtimes expect them.
const (
	DefaultPluginDir   = kubeletplugin.KubeletPluginsDir + "/" + DriverName
	DefaultRegistryDir = kubeletplugin.KubeletRegistryDir
	DefaultCDIDir      = "/var/run/cdi"
)

// DeviceName is the name of a PCI function's device in the node's
// ResourceSlice: "0000:5e:00.1" is "pci-0000-5e-00-1". It names the
// function the way the hardware numbers it, so the plugin finds the card
// without asking the API server.
func DeviceName(pci string) string {
	return "pci-" + strings.NewReplacer(":", "-", ".", "-").Replace(pci)
}

var deviceName = regexp.MustCompile(`^pci-([0-9a-f]{4})-([0-9a-f]{2})-([0-9a-f]{2})-([0-7])$`)

// PCIOf is the PCI address a device name stands for.
func PCIOf(device string) (string, bool) {
	m := deviceName.FindStringSubmatch(device)
	if m == nil {
		return "", false
	}
	return m[1] + ":" + m[2] + ":" + m[3] + "." + m[4], true
}

// Options configure the plugin.
type Options struct {
	// Node is the node's name in Kubernetes: the pool of its devices.
	Node string
	// Client reads the claims the kubelet names.
	Client kubernetes.Interface
	// Host reads the node's cards; Root is the directory it reads below
	// ("/" in production), where the VFIO groups are found too.
	Host fpga.Host
	Root string
	// PluginDir holds the socket the kubelet calls, RegistryDir the
	// registration socket the kubelet watches for, CDIDir the CDI specs
	// the container runtime reads. Empty means the defaults.
	PluginDir, RegistryDir, CDIDir string
	Log                            *slog.Logger
}

// Plugin is the running kubelet plugin.
type Plugin struct {
	o      Options
	helper *kubeletplugin.Helper
	// mu guards the CDI directory: prepares see each other's specs.
	mu sync.Mutex
}

// Start serves the plugin until ctx ends or Stop is called.
func Start(ctx context.Context, o Options) (*Plugin, error) {
	if o.Client == nil {
		return nil, errors.New("dra: no Kubernetes client")
	}
	p, err := newPlugin(o)
	if err != nil {
		return nil, err
	}
	o = p.o
	for _, d := range []string{o.PluginDir, o.RegistryDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("dra: %w", err)
		}
	}
	// The helper logs through klog; send that to the agent's log.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(o.Log.Handler()))
	h, err := kubeletplugin.Start(ctx, p,
		kubeletplugin.DriverName(DriverName),
		kubeletplugin.NodeName(o.Node),
		kubeletplugin.KubeClient(o.Client),
		kubeletplugin.PluginDataDirectoryPath(o.PluginDir),
		kubeletplugin.RegistrarDirectoryPath(o.RegistryDir),
		kubeletplugin.GRPCVerbosity(-1),
		kubeletplugin.HealthService(false),
	)
	if err != nil {
		return nil, fmt.Errorf("dra: start the kubelet plugin: %w", err)
	}
	p.helper = h
	o.Log.Info("dra: kubelet plugin serving", "driver", DriverName, "node", o.Node,
		"socket", p.Socket(), "registry", o.RegistryDir, "cdi", o.CDIDir)
	return p, nil
}

// newPlugin checks the options and fills in the defaults; it serves
// nothing yet.
func newPlugin(o Options) (*Plugin, error) {
	var errs []error
	if o.Node == "" {
		errs = append(errs, errors.New("dra: no node name"))
	}
	if o.Host == nil {
		errs = append(errs, errors.New("dra: no host to read the node's cards"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.PluginDir == "" {
		o.PluginDir = DefaultPluginDir
	}
	if o.RegistryDir == "" {
		o.RegistryDir = DefaultRegistryDir
	}
	if o.CDIDir == "" {
		o.CDIDir = DefaultCDIDir
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.CDIDir, 0o755); err != nil {
		return nil, fmt.Errorf("dra: %w", err)
	}
	return &Plugin{o: o}, nil
}

// Stop stops serving and waits for the plugin's goroutines. A nil
// Plugin (none started) does nothing.
func (p *Plugin) Stop() {
	if p != nil {
		p.helper.Stop()
	}
}

// Socket is the path of the socket the kubelet calls.
func (p *Plugin) Socket() string { return filepath.Join(p.o.PluginDir, "dra.sock") }

// RegistrationSocket is the path of the socket the kubelet registers the
// plugin through.
func (p *Plugin) RegistrationSocket() string {
	return filepath.Join(p.o.RegistryDir, DriverName+"-reg.sock")
}

// PrepareResourceClaims writes a CDI spec for each claim's devices of
// this driver and answers their CDI device IDs. A claim that cannot be
// prepared gets its error; the others are prepared.
func (p *Plugin) PrepareResourceClaims(ctx context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	devs, err := p.o.Host.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the node's cards: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[types.UID]kubeletplugin.PrepareResult, len(claims))
	for _, c := range claims {
		res, err := p.prepare(c, devs)
		if err != nil {
			err = fmt.Errorf("claim %s/%s: %w", c.Namespace, c.Name, err)
			p.o.Log.Warn("dra: not prepared", "err", err)
		} else {
			p.o.Log.Info("dra: prepared", "claim", c.Namespace+"/"+c.Name, "uid", c.UID, "devices", len(res))
		}
		out[c.UID] = kubeletplugin.PrepareResult{Err: err, Devices: res}
	}
	return out, nil
}

func (p *Plugin) prepare(c *resourceapi.ResourceClaim, devs []fpga.Device) ([]kubeletplugin.Device, error) {
	if c.Status.Allocation == nil {
		return nil, errors.New("not allocated")
	}
	spec := cdi.Spec{Version: cdi.CurrentVersion, Kind: CDIKind}
	var out []kubeletplugin.Device
	for _, r := range c.Status.Allocation.Devices.Results {
		if r.Driver != DriverName {
			continue
		}
		if r.Pool != p.o.Node {
			return nil, fmt.Errorf("device %s is in pool %s, and this is node %s", r.Device, r.Pool, p.o.Node)
		}
		edits, err := p.edits(r.Device, devs)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", r.Device, err)
		}
		if other := p.holder(r.Device, c.UID); other != "" {
			return nil, fmt.Errorf("device %s is prepared for claim %s", r.Device, other)
		}
		name := string(c.UID) + "-" + r.Device
		spec.Devices = append(spec.Devices, cdi.Device{
			Name:        name,
			Annotations: map[string]string{annotationDevice: r.Device},
			ContainerEdits: cdi.ContainerEdits{
				DeviceNodes: edits,
				Env:         []string{envName(r.Request) + "=" + r.Device},
			},
		})
		out = append(out, kubeletplugin.Device{
			Requests: []string{r.Request}, PoolName: r.Pool, DeviceName: r.Device,
			CDIDeviceIDs: []string{CDIKind + "=" + name},
		})
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := p.writeSpec(c.UID, &spec); err != nil {
		return nil, err
	}
	return out, nil
}

// envName is the variable that tells a container which device a request
// got: FPGAOPS_DEVICE_<REQUEST>, the request's name in capitals with
// every other character an underscore.
func envName(request string) string {
	return "FPGAOPS_DEVICE_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, request)
}

// annotationDevice records in a CDI device which DRA device it is.
const annotationDevice = DriverName + "/device"

// edits finds the device's card and the device nodes that give a
// container its function.
func (p *Plugin) edits(device string, devs []fpga.Device) ([]*cdi.DeviceNode, error) {
	pci, ok := PCIOf(device)
	if !ok {
		return nil, errors.New("not a device of this driver (want pci-DDDD-BB-DD-F)")
	}
	for i := range devs {
		d := &devs[i]
		if d.PCI == pci {
			if err := usable(d); err != nil {
				return nil, err
			}
			for _, port := range d.Ports {
				if port.ID == 0 && !port.OnVF && port.Dev != "" {
					return p.nodes(port.Dev), nil
				}
			}
			return nil, fmt.Errorf("card %s has no AFU port on its PF (its VFs are on, or a VM holds it)", pci)
		}
		for _, vf := range d.VFs {
			if vf.PCI != pci {
				continue
			}
			if err := usable(d); err != nil {
				return nil, err
			}
			if vf.Driver == "vfio-pci" {
				group, err := os.Readlink(filepath.Join(p.o.Root, "sys/bus/pci/devices", pci, "iommu_group"))
				if err != nil {
					return nil, fmt.Errorf("vf%d of card %s: its IOMMU group: %w", vf.Index, d.PCI, err)
				}
				return p.nodes("dev/vfio/"+filepath.Base(group), "dev/vfio/vfio"), nil
			}
			for _, port := range d.Ports {
				if port.OnVF && port.Dev != "" && vf.Index == 0 {
					return p.nodes(port.Dev), nil
				}
			}
			return nil, fmt.Errorf("vf%d of card %s is bound to %q: neither vfio-pci nor a driver with an AFU port", vf.Index, d.PCI, vf.Driver)
		}
	}
	return nil, fmt.Errorf("no FPGA function at %s on node %s", pci, p.o.Node)
}

// usable refuses a card that reports a problem.
func usable(d *fpga.Device) error {
	if !d.Health.OK() {
		return fmt.Errorf("card %s reports %s", d.PCI, strings.Join(d.Health.Problems, "; "))
	}
	return nil
}

// nodes are CDI device nodes for paths relative to the root: the
// container sees them where the host has them under "/".
func (p *Plugin) nodes(rel ...string) []*cdi.DeviceNode {
	out := make([]*cdi.DeviceNode, len(rel))
	for i, r := range rel {
		n := &cdi.DeviceNode{Path: "/" + r}
		if p.o.Root != "/" {
			n.HostPath = filepath.Join(p.o.Root, r)
		}
		out[i] = n
	}
	return out
}

// specPath is where the CDI spec of a claim lives.
func (p *Plugin) specPath(claim types.UID) string {
	return filepath.Join(p.o.CDIDir, DriverName+"-"+string(claim)+".json")
}

// holder names the claim another CDI spec of this driver gives the
// device to, or "". Specs are the plugin's memory across restarts.
func (p *Plugin) holder(device string, claim types.UID) string {
	files, _ := filepath.Glob(filepath.Join(p.o.CDIDir, DriverName+"-*.json"))
	for _, f := range files {
		if f == p.specPath(claim) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var s cdi.Spec
		if json.Unmarshal(data, &s) != nil {
			continue
		}
		for _, d := range s.Devices {
			if d.Annotations[annotationDevice] == device {
				return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), DriverName+"-"), ".json")
			}
		}
	}
	return ""
}

// writeSpec writes the claim's CDI spec whole, or not at all.
func (p *Plugin) writeSpec(claim types.UID, s *cdi.Spec) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := p.specPath(claim)
	tmp, err := os.CreateTemp(p.o.CDIDir, ".tmp-"+DriverName+"-*")
	if err != nil {
		return fmt.Errorf("write CDI spec: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write CDI spec: %w", err)
	}
	if err := errors.Join(tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("write CDI spec: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write CDI spec: %w", err)
	}
	return nil
}

// UnprepareResourceClaims removes the claims' CDI specs. A claim that
// was never prepared here is no error.
func (p *Plugin) UnprepareResourceClaims(_ context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[types.UID]error, len(claims))
	for _, c := range claims {
		err := os.Remove(p.specPath(c.UID))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("claim %s: remove CDI spec: %w", c.String(), err)
		} else {
			p.o.Log.Info("dra: unprepared", "claim", c.Namespace+"/"+c.Name, "uid", c.UID)
		}
		out[c.UID] = err
	}
	return out, nil
}

// HandleError logs what went wrong in the background: the plugin
// publishes nothing, so nothing there is fatal.
func (p *Plugin) HandleError(_ context.Context, err error, msg string) {
	p.o.Log.Error("dra: "+msg, "err", err)
}

// WatchHealthStatus is not served (Start turns the service off): a
// card's health is the controller's business, which withdraws a sick
// card's devices from the ResourceSlice, and preparing refuses one.
func (p *Plugin) WatchHealthStatus(context.Context, chan<- kubeletplugin.DeviceHealthReport) error {
	return kubeletplugin.ErrHealthNotSupported
}

// Flags are the agent's flags that serve the plugin.
type Flags struct {
	Node, Kubeconfig, PluginDir, RegistryDir, CDIDir string
}

// Register adds the flags.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Node, "dra-node", "", "serve the DRA kubelet plugin of driver "+DriverName+" for this node, named\nas the Kubernetes cluster names it (default: no plugin)")
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig the DRA plugin reads ResourceClaims with (default: in-cluster)")
	fs.StringVar(&f.PluginDir, "dra-plugin-dir", DefaultPluginDir, "folder of the DRA plugin's socket, which the kubelet calls")
	fs.StringVar(&f.RegistryDir, "dra-registry-dir", DefaultRegistryDir, "the kubelet's plugin registration folder")
	fs.StringVar(&f.CDIDir, "cdi-dir", DefaultCDIDir, "folder of the CDI specs the container runtime reads")
}

// Start serves the plugin over the node's cards, read below root, when
// --dra-node names the node; otherwise it returns nil, which Stop takes.
func (f *Flags) Start(ctx context.Context, host fpga.Host, root string, log *slog.Logger) (*Plugin, error) {
	if f.Node == "" {
		return nil, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: f.Kubeconfig}
	var conf *rest.Config
	var err error
	if f.Kubeconfig == "" {
		conf, err = rest.InClusterConfig()
	} else {
		conf, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("dra: Kubernetes client (--kubeconfig): %w", err)
	}
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return nil, fmt.Errorf("dra: Kubernetes client: %w", err)
	}
	return Start(ctx, Options{Node: f.Node, Client: client, Host: host, Root: root,
		PluginDir: f.PluginDir, RegistryDir: f.RegistryDir, CDIDir: f.CDIDir, Log: log})
}
