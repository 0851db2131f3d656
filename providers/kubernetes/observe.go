package kubernetes

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// observeConcurrency bounds the nodes observed at once.
const observeConcurrency = 8

// shared is what the observation reads once for every node.
type shared struct {
	slices map[string]*resourceapi.ResourceSlice // by pool (node)
	claims []resourceapi.ResourceClaim
	pdbs   []policyv1.PodDisruptionBudget
}

// Observe reads the DeviceClasses fpgaops made, the driver's
// ResourceSlices, the claims that hold the nodes' devices with the pods
// they are reserved for and the PodDisruptionBudgets over those, and
// each node's cards from its agent. A node whose agent or Node cannot be
// read is unknown; an error in what every node shares fails the whole
// observation, since no plan could be trusted without it.
func (b *Backend) Observe(ctx context.Context, fleet *spec.Fleet, nodes []*spec.Node) (*State, error) {
	st := &State{Classes: []Class{}, Nodes: make([]Node, len(nodes))}
	cl := &shared{slices: map[string]*resourceapi.ResourceSlice{}}
	rs := b.client.ResourceV1()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		list, err := rs.DeviceClasses().List(gctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy})
		if err != nil {
			return fmt.Errorf("list DeviceClasses: %w", err)
		}
		for _, c := range list.Items {
			sel := ""
			if len(c.Spec.Selectors) == 1 && c.Spec.Selectors[0].CEL != nil {
				sel = c.Spec.Selectors[0].CEL.Expression
			}
			st.Classes = append(st.Classes, Class{Name: c.Name, Selector: sel})
		}
		return nil
	})
	g.Go(func() error {
		list, err := rs.ResourceSlices().List(gctx, metav1.ListOptions{FieldSelector: "spec.driver=" + DriverName})
		if err != nil {
			return fmt.Errorf("list ResourceSlices: %w", err)
		}
		for i := range list.Items {
			s := &list.Items[i]
			if s.Spec.Driver == DriverName && s.Name == SliceName(s.Spec.Pool.Name) {
				cl.slices[s.Spec.Pool.Name] = s
			}
		}
		return nil
	})
	g.Go(func() error {
		list, err := rs.ResourceClaims(metav1.NamespaceAll).List(gctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list ResourceClaims: %w", err)
		}
		cl.claims = list.Items
		return nil
	})
	g.Go(func() error {
		list, err := b.client.PolicyV1().PodDisruptionBudgets(metav1.NamespaceAll).List(gctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list PodDisruptionBudgets: %w", err)
		}
		cl.pdbs = list.Items
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	ng, nctx := errgroup.WithContext(ctx)
	ng.SetLimit(observeConcurrency)
	for i, n := range nodes {
		ng.Go(func() error {
			st.Nodes[i] = b.observeNode(nctx, n, cl)
			return nil
		})
	}
	_ = ng.Wait() // workers never fail: an unknown node is data
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.Sort()
	return st, nil
}

// observeNode reads one node; its failures make the node unknown.
func (b *Backend) observeNode(ctx context.Context, n *spec.Node, cl *shared) Node {
	out := Node{Name: n.Name, Kubernetes: n.Kubernetes, State: observed.NodeOK}
	unknown := func(err error) Node {
		b.log.Warn("kubernetes: node unknown", "node", n.Name, "kubernetes", n.Kubernetes, "err", err)
		return Node{Name: n.Name, Kubernetes: n.Kubernetes, State: observed.NodeUnknown, Reason: err.Error()}
	}
	devs, err := b.opts.Agents.ObserveCards(ctx, n)
	if err != nil {
		return unknown(fmt.Errorf("agent: %w", err))
	}
	for _, d := range devs {
		c := Card{PCI: d.PCI, Board: d.Board, InterfaceID: d.InterfaceID, AFUID: bitstream.NormalizeID(d.AFUID()), NumVFs: d.NumVFs, Problems: d.Health.Problems}
		for _, vf := range d.VFs {
			c.VFs = append(c.VFs, Function{Index: vf.Index, PCI: vf.PCI, Driver: vf.Driver})
		}
		out.Cards = append(out.Cards, c)
	}
	_, err = b.client.CoreV1().Nodes().Get(ctx, n.Kubernetes, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return unknown(fmt.Errorf("get node %s: %w", n.Kubernetes, err))
	default:
		out.Registered = true
	}
	if s := cl.slices[n.Kubernetes]; s != nil {
		sl := &Slice{Name: s.Name, Generation: s.Spec.Pool.Generation, Devices: []Device{}}
		for _, d := range s.Spec.Devices {
			sl.Devices = append(sl.Devices, Device{Name: d.Name, Attrs: stringAttrs(d.Attributes)})
		}
		out.Slice = sl
	}
	pods := map[string]*Pod{}
	for i := range cl.claims {
		c := &cl.claims[i]
		if c.Status.Allocation == nil {
			continue
		}
		for _, r := range c.Status.Allocation.Devices.Results {
			if r.Driver != DriverName || r.Pool != n.Kubernetes {
				continue
			}
			a := Allocation{Claim: c.Namespace + "/" + c.Name, ClaimUID: string(c.UID), Device: r.Device, Request: r.Request, Class: requestClass(c, r.Request)}
			for _, ref := range c.Status.ReservedFor {
				if ref.Resource != "pods" || ref.APIGroup != "" {
					continue
				}
				key := c.Namespace + "/" + ref.Name + "/" + string(ref.UID)
				p, ok := pods[key]
				if !ok {
					if p, err = b.observePod(ctx, c.Namespace, ref.Name, string(ref.UID), cl.pdbs); err != nil {
						return unknown(err)
					}
					pods[key] = p
				}
				a.Pods = append(a.Pods, *p)
			}
			out.Allocations = append(out.Allocations, a)
		}
	}
	return out
}

// observePod reads a pod a claim is reserved for, and whether the
// Eviction API would refuse to evict it now.
func (b *Backend) observePod(ctx context.Context, ns, name, uid string, pdbs []policyv1.PodDisruptionBudget) (*Pod, error) {
	p := &Pod{Namespace: ns, Name: name, UID: uid}
	pod, err := b.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		p.Gone = true
		return p, nil
	case err != nil:
		return nil, fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	case string(pod.UID) != uid:
		p.Gone = true
		return p, nil
	}
	p.Phase = string(pod.Status.Phase)
	p.Blocked = evictionBlocked(pod, pdbs)
	return p, nil
}

// evictionBlocked says why the Eviction API would refuse to evict the
// pod now, as the API server decides it, or "".
func evictionBlocked(pod *corev1.Pod, pdbs []policyv1.PodDisruptionBudget) string {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return ""
	}
	if pod.DeletionTimestamp != nil {
		return ""
	}
	var match []*policyv1.PodDisruptionBudget
	for i := range pdbs {
		pdb := &pdbs[i]
		if pdb.Namespace != pod.Namespace || pdb.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		match = append(match, pdb)
	}
	switch {
	case len(match) == 0:
		return ""
	case len(match) > 1:
		var names []string
		for _, m := range match {
			names = append(names, m.Name)
		}
		return "more than one PodDisruptionBudget (" + strings.Join(names, ", ") + ") selects it, and the Eviction API refuses that"
	}
	pdb := match[0]
	if !ready(pod) {
		if pdb.Spec.UnhealthyPodEvictionPolicy != nil && *pdb.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow {
			return ""
		}
		if pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0 {
			return ""
		}
	}
	name := "PodDisruptionBudget " + pdb.Namespace + "/" + pdb.Name
	switch {
	case pdb.Status.ObservedGeneration < pdb.Generation:
		return name + " is still being processed by its controller"
	case pdb.Status.DisruptionsAllowed <= 0:
		return fmt.Sprintf("%s allows no disruption now: it needs %d healthy pod(s) and has %d", name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy)
	}
	return ""
}

func ready(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// requestClass is the DeviceClass of the claim's request (or subrequest,
// "request/sub") a result answers.
func requestClass(c *resourceapi.ResourceClaim, request string) string {
	base, sub, _ := strings.Cut(request, "/")
	for _, r := range c.Spec.Devices.Requests {
		if r.Name != base {
			continue
		}
		if r.Exactly != nil {
			return r.Exactly.DeviceClassName
		}
		for _, s := range r.FirstAvailable {
			if s.Name == sub {
				return s.DeviceClassName
			}
		}
	}
	return ""
}

// stringAttrs are a device's string attributes, the driver's without
// their domain.
func stringAttrs(in map[resourceapi.QualifiedName]resourceapi.DeviceAttribute) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		if v.StringValue == nil {
			continue
		}
		name := strings.TrimPrefix(string(k), DriverName+"/")
		out[name] = *v.StringValue
	}
	return out
}
