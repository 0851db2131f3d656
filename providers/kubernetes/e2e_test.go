package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	drapb "k8s.io/kubelet/pkg/apis/dra/v1"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent/dra"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/providers/kubernetes/kubetest"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/spec"
)

// The docs' example selects this AFU: examples/fleet's Smith-Waterman.
const (
	afuSmithWaterman   = "2b6e9d41c7a34f05b8e13d92a6f7c04e"
	afuSmithWatermanV2 = "7d1e0c3b5a9f4e2d8c6b0a1f3e5d7c9b"
)

// scene is one Kubernetes node of a simulated fleet, its Node in the
// shared cluster, its agent's kubelet plugin and a kubelet played by the
// test.
type scene struct {
	t      *testing.T
	ctx    context.Context
	fleet  *spec.Fleet
	sim    *sim.Sim
	kube   string // the node's name in the cluster
	ns     string
	cdi    string
	plugin *dra.Plugin
	engine *engine.Engine
	agents *agent.Client
}

// gbs writes a GBS image for the interface and AFU into the repository
// and returns its Bitstream.
func gbs(t *testing.T, root, name, iface, afu string) spec.Bitstream {
	t.Helper()
	data, err := bitstream.Build(bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{InterfaceUUID: iface,
		AcceleratorClusters: []bitstream.Cluster{{Name: name, TotalContexts: 1, AcceleratorTypeUUID: afu}}}}, []byte("payload of "+name))
	if err != nil {
		t.Fatal(err)
	}
	file := "bitstreams/" + name + ".gbs"
	if err := os.MkdirAll(filepath.Join(root, "bitstreams"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, file), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return spec.Bitstream{Name: name, File: file, SHA256: hex.EncodeToString(sum[:]), InterfaceID: iface, AFUID: afu, Size: int64(len(data))}
}

// newScene builds node kube-a: pac0, a whole D5005 for pool genomics
// running smith-waterman, and pac1, an N3000 whose VF is pool
// proteomics's running nlb. tag keeps its cluster objects apart.
func newScene(t *testing.T, tag string) *scene {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	root := t.TempDir()
	s := &scene{t: t, ctx: ctx, kube: "kube-a-" + tag, ns: "lab-" + tag}
	s.fleet = &spec.Fleet{
		Root: root,
		Nodes: []spec.Node{{Name: "kube-a", Kubernetes: s.kube, FPGAs: []spec.FPGA{
			{Slot: "pac0", PCI: pciA0, Board: spec.BoardD5005, InterfaceID: ifD5005},
			{Slot: "pac1", PCI: pciA1, Board: spec.BoardN3000, VFs: 1, InterfaceID: ifN3000},
		}}},
		Bitstreams: []spec.Bitstream{
			gbs(t, root, "nlb", ifN3000, afuNLB),
			gbs(t, root, "smith-waterman", ifD5005, afuSmithWaterman),
			gbs(t, root, "smith-waterman-v2", ifD5005, afuSmithWatermanV2),
		},
		Bindings: []spec.Binding{
			{Name: "genomics-a", Node: "kube-a", FPGA: "pac0", Function: spec.PF, Pool: "genomics", Bitstream: "smith-waterman"},
			{Name: "proteomics-a", Node: "kube-a", FPGA: "pac1", Function: spec.VF(0), Pool: "proteomics", Bitstream: "nlb"},
		},
		Policy: spec.Policy{Drift: spec.DriftReport},
	}
	var err error
	if s.sim, err = sim.New(s.fleet, sim.Options{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.sim.Handler())
	t.Cleanup(func() { srv.Close(); s.sim.Close() })
	s.fleet.Nodes[0].Endpoint = srv.URL + "/nodes/kube-a"
	s.agents = agent.NewClient(srv.Client())

	kind := &Kind{}
	fs := pflag.NewFlagSet("e2e", pflag.ContinueOnError)
	kind.Flags(fs)
	if err := fs.Parse([]string{"--kubeconfig", cluster.Kubeconfig, "--k8s-eviction-timeout", "1m"}); err != nil {
		t.Fatal(err)
	}
	s.engine = &engine.Engine{Kinds: []providers.Kind{kind}, Agents: agent.Transport{Insecure: true}, Concurrency: 4,
		NodeTimeout: 20 * time.Second, Retry: execute.Retry{Attempts: 3, Base: 20 * time.Millisecond, Max: 100 * time.Millisecond},
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}

	c := cluster.Client
	if err := kubetest.AddNode(ctx, c, s.kube); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The node's agent serves the kubelet plugin; its sockets live in a
	// short folder, for the length limit of socket paths.
	dir, err := os.MkdirTemp("", "dra-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.cdi = filepath.Join(dir, "cdi")
	pctx, stop := context.WithCancel(context.Background())
	s.plugin, err = dra.Start(pctx, dra.Options{Node: s.kube, Client: c, Host: agentHost{s.agents, &s.fleet.Nodes[0]}, Root: "/",
		PluginDir: filepath.Join(dir, "plugin"), RegistryDir: filepath.Join(dir, "registry"), CDIDir: s.cdi})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); s.plugin.Stop() })

	// The kubelet: a pod's container holds the port of a whole card it
	// got open, so the simulated card refuses to be programmed under it.
	busy := func(on bool) func(*corev1.Pod, []*drapb.Device) {
		return func(_ *corev1.Pod, devs []*drapb.Device) {
			for _, d := range devs {
				if pci, _ := dra.PCIOf(d.DeviceName); pci == pciA0 {
					if err := s.sim.SetPortBusy("kube-a", pci, on); err != nil {
						t.Error(err)
					}
				}
			}
		}
	}
	kubelet := &kubetest.Kubelet{Node: s.kube, Client: c, Socket: s.plugin.Socket(), Started: busy(true), Stopped: busy(false)}
	var claimErrs []error
	var mu sync.Mutex
	kctx, kstop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := kubelet.Run(kctx); err != nil {
			mu.Lock()
			claimErrs = append(claimErrs, err)
			mu.Unlock()
		}
	})
	wg.Go(func() {
		kubetest.RunClaimTemplates(kctx, c, func(err error) {
			mu.Lock()
			claimErrs = append(claimErrs, err)
			mu.Unlock()
		})
	})
	t.Cleanup(func() {
		kstop()
		wg.Wait()
		if err := errors.Join(append(claimErrs, kubelet.Errors())...); err != nil {
			t.Errorf("the kubelet or the claim controller failed: %v", err)
		}
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// agentHost is the node's cards as the agent reads them, for the
// plugin, which only discovers.
type agentHost struct {
	c    *agent.Client
	node *spec.Node
}

func (h agentHost) Discover(ctx context.Context) ([]fpga.Device, error) {
	return h.c.ObserveCards(ctx, h.node)
}
func (agentHost) SetVFs(context.Context, string, int) error { return errors.ErrUnsupported }
func (agentHost) Program(context.Context, string, []byte, fpga.ProgramOptions) error {
	return errors.ErrUnsupported
}

// run plans against the fleet and applies, as `fpgaops apply` does.
func (s *scene) run() (*plans.Plan, *execute.Report) {
	s.t.Helper()
	p, err := s.engine.Plan(s.ctx, s.fleet, engine.PlanOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := s.engine.Apply(s.ctx, p, engine.ApplyOptions{})
	if err != nil {
		s.t.Fatalf("apply: %v\n%s", err, listing(p.Plan.Changes))
	}
	return p.Plan, out.Report
}

// runFailing plans and applies, where a change is meant to fail.
func (s *scene) runFailing() (*plans.Plan, *execute.Report) {
	s.t.Helper()
	p, err := s.engine.Plan(s.ctx, s.fleet, engine.PlanOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := s.engine.Apply(s.ctx, p, engine.ApplyOptions{})
	if err == nil || out == nil || out.Report == nil {
		s.t.Fatalf("apply: %v, want a failed change\n%s", err, listing(p.Plan.Changes))
	}
	return p.Plan, out.Report
}

// plan plans without applying.
func (s *scene) plan() *plans.Plan {
	s.t.Helper()
	p, err := s.engine.Plan(s.ctx, s.fleet, engine.PlanOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return p.Plan
}

// device is the node's device in its slice, nil if none.
func (s *scene) device(name string) *resourceapi.Device {
	s.t.Helper()
	sl, err := cluster.Client.ResourceV1().ResourceSlices().Get(s.ctx, SliceName(s.kube), metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	for i := range sl.Spec.Devices {
		if sl.Spec.Devices[i].Name == name {
			return &sl.Spec.Devices[i]
		}
	}
	return nil
}

// running waits until the pod runs on the node and returns it.
func (s *scene) running(name string) *corev1.Pod {
	s.t.Helper()
	var pod *corev1.Pod
	err := kubetest.WaitFor(s.ctx, "pod "+name+" running", func(ctx context.Context) (bool, error) {
		var err error
		pod, err = cluster.Client.CoreV1().Pods(s.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Spec.NodeName == s.kube && pod.Status.Phase == corev1.PodRunning, err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return pod
}

// claimOf is the ResourceClaim a running pod's claim names.
func (s *scene) claimOf(pod *corev1.Pod) *resourceapi.ResourceClaim {
	s.t.Helper()
	name := ""
	if pc := pod.Spec.ResourceClaims[0]; pc.ResourceClaimName != nil {
		name = *pc.ResourceClaimName
	} else {
		name = *pod.Status.ResourceClaimStatuses[0].ResourceClaimName
	}
	c, err := cluster.Client.ResourceV1().ResourceClaims(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// cdiNodes are the container paths of a claim's CDI spec.
func (s *scene) cdiNodes(claim *resourceapi.ResourceClaim) []string {
	s.t.Helper()
	data, err := os.ReadFile(filepath.Join(s.cdi, DriverName+"-"+string(claim.UID)+".json"))
	if err != nil {
		s.t.Fatal(err)
	}
	var spec struct {
		Devices []struct {
			ContainerEdits struct {
				DeviceNodes []struct{ Path string } `json:"deviceNodes"`
			} `json:"containerEdits"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, d := range spec.Devices {
		for _, n := range d.ContainerEdits.DeviceNodes {
			out = append(out, n.Path)
		}
	}
	return out
}

// portDev is the device node of a card's port 0, as the agent reads it.
func (s *scene) portDev(pci string) string {
	s.t.Helper()
	devs, err := s.agents.ObserveCards(s.ctx, &s.fleet.Nodes[0])
	if err != nil {
		s.t.Fatal(err)
	}
	for _, d := range devs {
		for _, p := range d.Ports {
			if d.PCI == pci && p.ID == 0 {
				return "/" + p.Dev
			}
		}
	}
	s.t.Fatalf("no port 0 on %s", pci)
	return ""
}

// applyDocs creates every Kubernetes object of docs/kubernetes.md's YAML
// blocks in the scene's namespace, and checks that the DeviceClass it
// shows is the one fpgaops made. It returns the kinds it applied.
func (s *scene) applyDocs() []string {
	s.t.Helper()
	data, err := os.ReadFile("../../docs/kubernetes.md")
	if err != nil {
		s.t.Fatal(err)
	}
	c := cluster.Client
	var kinds []string
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1) {
		for _, doc := range strings.Split(string(block[1]), "\n---\n") {
			if strings.Contains(doc, "apiVersion: fpgaops/") {
				continue
			}
			obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
			if err != nil {
				s.t.Fatalf("docs/kubernetes.md: %v\n%s", err, doc)
			}
			kinds = append(kinds, gvk.Kind)
			switch o := obj.(type) {
			case *resourceapi.DeviceClass:
				have, err := c.ResourceV1().DeviceClasses().Get(s.ctx, o.Name, metav1.GetOptions{})
				if err != nil {
					s.t.Fatalf("the docs' DeviceClass %s: %v", o.Name, err)
				}
				if !reflect.DeepEqual(have.Spec, o.Spec) || !reflect.DeepEqual(have.Labels, o.Labels) {
					s.t.Errorf("the docs' DeviceClass differs from fpgaops's:\n%+v\n%+v", o, have)
				}
			case *resourceapi.ResourceClaimTemplate:
				_, err = c.ResourceV1().ResourceClaimTemplates(s.ns).Create(s.ctx, o, metav1.CreateOptions{})
			case *corev1.Pod:
				_, err = c.CoreV1().Pods(s.ns).Create(s.ctx, o, metav1.CreateOptions{})
			case *policyv1.PodDisruptionBudget:
				_, err = c.PolicyV1().PodDisruptionBudgets(s.ns).Create(s.ctx, o, metav1.CreateOptions{})
			default:
				s.t.Fatalf("docs/kubernetes.md shows a %s, which this test does not apply", gvk.Kind)
			}
			if err != nil {
				s.t.Fatalf("apply the docs' %s: %v", gvk.Kind, err)
			}
		}
	}
	return kinds
}

// runnable are the changes of the plan that run, one a line.
func runnable(p *plans.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Runnable() || c.Action == plans.ActionReport {
			out = append(out, line(c))
		}
	}
	return out
}

// TestEndToEnd runs a Kubernetes node through publishing, a claim the
// real scheduler allocates, drift, and a reprogramming that a
// PodDisruptionBudget first holds and then lets through.
func TestEndToEnd(t *testing.T) {
	s := newScene(t, "e2e")
	c := cluster.Client

	// The plugin registers with the kubelet as a DRA plugin of the driver.
	conn, err := grpc.NewClient("unix:"+s.plugin.RegistrationSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	info, err := registerapi.NewRegistrationClient(conn).GetInfo(s.ctx, &registerapi.InfoRequest{})
	conn.Close()
	if err != nil || info.Type != registerapi.DRAPlugin || info.Name != DriverName || info.Endpoint != s.plugin.Socket() || !slices.Contains(info.SupportedVersions, drapb.DRAPluginService) {
		t.Fatalf("registration: %+v, %v", info, err)
	}

	// 1. A fresh node: its cards are programmed and published, with a
	// DeviceClass per pool.
	p, rep := s.run()
	if rep.Applied != 7 || rep.Failed+rep.Blocked+rep.Held != 0 {
		t.Fatalf("first run: %+v\n%s", rep.Counts, listing(p.Changes))
	}
	sl, err := c.ResourceV1().ResourceSlices().Get(s.ctx, SliceName(s.kube), metav1.GetOptions{})
	if err != nil || len(sl.OwnerReferences) != 1 || sl.OwnerReferences[0].Kind != "Node" || sl.OwnerReferences[0].Name != s.kube || *sl.Spec.NodeName != s.kube {
		t.Fatalf("slice %+v, %v: want the node's, owned by its Node", sl, err)
	}
	pf := s.device(DeviceName(pciA0))
	if pf == nil {
		t.Fatal("pac0 is not offered")
	}
	for k, want := range map[string]string{"pool": "genomics", "afuID": afuSmithWaterman, "bitstream": "smith-waterman", "slot": "pac0",
		"board": "pac-d5005", "interfaceID": ifD5005, "function": "pf", "health": HealthOK, AttrPCI: pciA0} {
		if got := attrOf(pf, k); got != want {
			t.Errorf("pac0's %s is %q, want %q", k, got, want)
		}
	}
	vf := s.device(DeviceName(pciA1VF))
	if vf == nil || attrOf(vf, AttrPool) != "proteomics" || attrOf(vf, AttrFunction) != "vf0" {
		t.Fatalf("pac1's VF: %+v", vf)
	}
	if left := runnable(s.plan()); len(left) != 0 {
		t.Fatalf("not converged after the first run:\n%s", strings.Join(left, "\n"))
	}

	// 2. The docs' example: the scheduler allocates the claim of the
	// template to the genomics card; the plugin gives the pod its port.
	kinds := s.applyDocs()
	if want := []string{"DeviceClass", "ResourceClaimTemplate", "Pod", "PodDisruptionBudget"}; !slices.Equal(kinds, want) {
		t.Fatalf("docs/kubernetes.md shows %v, want %v", kinds, want)
	}
	aligner := s.running("aligner")
	claim := s.claimOf(aligner)
	got := claim.Status.Allocation.Devices.Results
	if len(got) != 1 || got[0].Device != DeviceName(pciA0) || got[0].Pool != s.kube || got[0].Driver != DriverName {
		t.Fatalf("aligner's claim is allocated %+v, want pac0", got)
	}
	if nodes := s.cdiNodes(claim); !slices.Equal(nodes, []string{s.portDev(pciA0)}) {
		t.Errorf("aligner's container gets %v, want pac0's port", nodes)
	}
	// A claim of its own for pool proteomics gets the VF, and the VF's port.
	s.podWithClaim("folder", "proteomics")
	folder := s.claimOf(s.running("folder"))
	if r := folder.Status.Allocation.Devices.Results; len(r) != 1 || r[0].Device != DeviceName(pciA1VF) {
		t.Fatalf("folder's claim is allocated %+v, want pac1's VF", r)
	}
	if nodes := s.cdiNodes(folder); len(nodes) != 1 || !strings.HasPrefix(nodes[0], "/dev/dfl-port.") {
		t.Errorf("folder's container gets %v, want the VF's port", nodes)
	}
	if left := runnable(s.plan()); len(left) != 0 {
		t.Fatalf("claims of their pools are drift:\n%s", strings.Join(left, "\n"))
	}

	// 3. Drift: a claim allocated by hand the genomics card through the
	// class of pool proteomics.
	s.stray(t)
	want := "report node/kube-a/fpga/pac0:report drift"
	var found bool
	for _, ch := range s.plan().Changes {
		if line(ch) == want && strings.Contains(ch.Reason, "claim "+s.ns+"/stray holds "+DeviceName(pciA0)+" through DeviceClass proteomics.fpga.fpgaops.io") {
			found = true
		}
	}
	if !found {
		t.Errorf("no drift report for the stray claim:\n%s", strings.Join(runnable(s.plan()), "\n"))
	}
	if err := c.CoreV1().Pods(s.ns).Delete(s.ctx, "stray", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// 4. A new bitstream for pac0 while aligner runs on it. The budget
	// allows no disruption: the card's chain is held, the pod runs on.
	if err := kubetest.SetBudgetStatus(s.ctx, c, s.ns, "aligner", 0, 1, 1); err != nil {
		t.Fatal(err)
	}
	s.fleet.Bindings[0].Bitstream = "smith-waterman-v2"
	programs := s.sim.Stats().Programs
	p, rep = s.run()
	budget := "PodDisruptionBudget " + s.ns + "/aligner allows no disruption now"
	eviction := "node/kube-a/fpga/pac0/pf/vm/" + s.ns + "/aligner:detach"
	for _, id := range []string{"node/kube-a/fpga/pac0/devices:detach", eviction} {
		ch, ok := p.Change(id)
		if !ok || ch.Held == nil || ch.Held.Gate != plans.GateInUse || !strings.Contains(ch.Held.Why, budget) || !ch.Disruptive {
			t.Errorf("%s: %+v, want held in-use by the budget", id, ch)
		}
	}
	if ch, ok := p.Change("node/kube-a/fpga/pac0:program"); !ok || ch.Held == nil || ch.Held.Gate != plans.GateDependency {
		t.Errorf("program: %+v, want held by dependency", ch)
	}
	if s.sim.Stats().Programs != programs || rep.Applied != 0 {
		t.Errorf("a held chain ran: %d programs, %+v", s.sim.Stats().Programs-programs, rep.Counts)
	}
	s.running("aligner")
	if d := s.device(DeviceName(pciA0)); d == nil || attrOf(d, AttrAFUID) != afuSmithWaterman {
		t.Errorf("pac0 left the slice while its chain was held: %+v", d)
	}

	// 5. The budget allows one disruption: the card leaves the slice, the
	// pod is evicted (the kubelet stops it and unprepares its claim), the
	// card is programmed and returns with the new AFU.
	if err := kubetest.SetBudgetStatus(s.ctx, c, s.ns, "aligner", 1, 1, 0); err != nil {
		t.Fatal(err)
	}
	p, rep = s.run()
	if rep.Applied != 4 || rep.Failed+rep.Blocked+rep.Held != 0 {
		t.Fatalf("reprogramming: %+v\n%s", rep.Counts, listing(p.Changes))
	}
	if _, err := c.CoreV1().Pods(s.ns).Get(s.ctx, "aligner", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("aligner was not evicted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.cdi, DriverName+"-"+string(claim.UID)+".json")); !os.IsNotExist(err) {
		t.Errorf("aligner's claim is still prepared: %v", err)
	}
	d := s.device(DeviceName(pciA0))
	if d == nil || attrOf(d, AttrAFUID) != afuSmithWatermanV2 || attrOf(d, AttrBitstream) != "smith-waterman-v2" {
		t.Errorf("pac0 after reprogramming: %+v", d)
	}
	st := s.sim.Stats()
	if st.Programs != programs+1 || st.Violations != 0 || st.Refused != 0 {
		t.Errorf("sim: %d programs, %d violations, %d refused: want 1, 0, 0", st.Programs-programs, st.Violations, st.Refused)
	}
	s.running("folder")
	if left := runnable(s.plan()); len(left) != 0 {
		t.Fatalf("not converged after reprogramming:\n%s", strings.Join(left, "\n"))
	}
}

// podWithClaim creates a pod with a ResourceClaim of its own (NAME-fpga)
// for a device of the pool.
func (s *scene) podWithClaim(name, pool string) {
	s.t.Helper()
	c := cluster.Client
	claimName := name + "-fpga"
	if _, err := c.ResourceV1().ResourceClaims(s.ns).Create(s.ctx, &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: claimName},
		Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{
			Name: "fpga", Exactly: &resourceapi.ExactDeviceRequest{DeviceClassName: ClassName(pool)}}}}},
	}, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
	if _, err := c.CoreV1().Pods(s.ns).Create(s.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			ResourceClaims: []corev1.PodResourceClaim{{Name: "fpga", ResourceClaimName: &claimName}},
			Containers:     []corev1.Container{{Name: "work", Image: "registry.example.com/work:1", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "fpga"}}}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// When programming fails after the card's pod was evicted, the eviction
// cannot be undone: the pod is reported degraded, the card keeps what it
// ran and stays out of its pool, and the next run finishes the change.
func TestFailedProgramAfterEviction(t *testing.T) {
	s := newScene(t, "fail")
	if p, rep := s.run(); rep.Failed+rep.Blocked+rep.Held != 0 {
		t.Fatalf("first run: %+v\n%s", rep.Counts, listing(p.Changes))
	}
	s.podWithClaim("worker", "genomics")
	s.running("worker")
	s.fleet.Bindings[0].Bitstream = "smith-waterman-v2"
	if err := s.sim.InjectFault("kube-a", sim.Fault{Op: sim.FaultProgram, PCI: pciA0, Message: "PR failed"}); err != nil {
		t.Fatal(err)
	}
	p, rep := s.runFailing()
	if rep.Failed != 1 {
		t.Fatalf("run with a failing PR: %+v\n%s", rep.Counts, listing(p.Changes))
	}
	if _, err := cluster.Client.CoreV1().Pods(s.ns).Get(s.ctx, "worker", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("worker was not evicted: %v", err)
	}
	if len(rep.Degraded) != 1 || rep.Degraded[0].VM != s.ns+"/worker" || rep.Degraded[0].Card != "pac0" ||
		!strings.Contains(rep.Degraded[0].Reason, "the pod was evicted, which cannot be undone") {
		t.Errorf("degraded: %+v, want the evicted pod", rep.Degraded)
	}
	if d := s.device(DeviceName(pciA0)); d != nil {
		t.Errorf("pac0 is offered after its PR failed: %+v", d)
	}
	if ch, ok := s.plan().Change("node/kube-a/fpga/pac0:program"); !ok || !ch.Runnable() {
		t.Errorf("the next plan does not program pac0 again:\n%s", listing(s.plan().Changes))
	}

	p, rep = s.run()
	if rep.Failed+rep.Blocked+rep.Held != 0 {
		t.Fatalf("the next run: %+v\n%s", rep.Counts, listing(p.Changes))
	}
	if d := s.device(DeviceName(pciA0)); d == nil || attrOf(d, AttrAFUID) != afuSmithWatermanV2 {
		t.Errorf("pac0 after the next run: %+v", d)
	}
	if st := s.sim.Stats(); st.Violations != 0 || st.Refused != 0 {
		t.Errorf("sim: %d violations, %d refused: want 0, 0", st.Violations, st.Refused)
	}
}

// stray is a pod no scheduler takes, whose claim someone allocated by
// hand the genomics card through the class of pool proteomics.
func (s *scene) stray(t *testing.T) {
	t.Helper()
	c := cluster.Client
	claim, err := c.ResourceV1().ResourceClaims(s.ns).Create(s.ctx, &resourceapi.ResourceClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "stray"},
		Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{Requests: []resourceapi.DeviceRequest{{
			Name: "fpga", Exactly: &resourceapi.ExactDeviceRequest{DeviceClassName: ClassName("proteomics")}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name := "stray"
	pod, err := c.CoreV1().Pods(s.ns).Create(s.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stray"},
		Spec: corev1.PodSpec{
			SchedulerName:  "by-hand",
			ResourceClaims: []corev1.PodResourceClaim{{Name: "fpga", ResourceClaimName: &name}},
			Containers:     []corev1.Container{{Name: "x", Image: "registry.example.com/x:1", Resources: corev1.ResourceRequirements{Claims: []corev1.ResourceClaim{{Name: "fpga"}}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claim.Status.Allocation = &resourceapi.AllocationResult{Devices: resourceapi.DeviceAllocationResult{Results: []resourceapi.DeviceRequestAllocationResult{
		{Request: "fpga", Driver: DriverName, Pool: s.kube, Device: DeviceName(pciA0)}}}}
	claim.Status.ReservedFor = []resourceapi.ResourceClaimConsumerReference{{Resource: "pods", Name: pod.Name, UID: pod.UID}}
	if _, err := c.ResourceV1().ResourceClaims(s.ns).UpdateStatus(s.ctx, claim, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
