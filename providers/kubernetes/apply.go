package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// What a change is about.
type kind int

const (
	kindUnknown kind = iota
	kindClass
	kindDevices
	kindEviction
	kindCard
)

func kindOf(c *plans.Change) kind {
	switch {
	case strings.HasPrefix(c.Object, objClass):
		return kindClass
	case strings.HasSuffix(c.Object, objDevices):
		return kindDevices
	case c.Action == plans.ActionDetach && strings.Contains(c.Object, "/vm/"):
		return kindEviction
	case c.Card != "" && c.Object == plans.CardID(c.Node, c.Card):
		return kindCard
	}
	return kindUnknown
}

// Check is the dry run of a change: it must carry what Apply reads, name
// a Kubernetes node of the desired fleet, and a bitstream to program
// must be the repository's and readable with its digest.
func (b *Backend) Check(ctx context.Context, desired *spec.Fleet, c *plans.Change) error {
	k := kindOf(c)
	if k != kindClass {
		n, ok := desired.Node(c.Node)
		if !ok || n.Kubernetes == "" {
			return fmt.Errorf("node %s is not a Kubernetes node of the desired state", c.Node)
		}
	}
	switch k {
	case kindClass:
		if c.After == nil || c.After.Attrs[attrName] == "" || c.After.Attrs[attrSelector] == "" {
			return errors.New("names no DeviceClass and selector")
		}
	case kindDevices:
		v := c.After
		if withdraws(c) {
			v = c.Before
		}
		if v == nil || v.Attrs[attrSlice] == "" {
			return errors.New("names no ResourceSlice")
		}
	case kindEviction:
		if c.Before == nil || !strings.Contains(c.Before.VM, "/") || c.Before.Attrs[attrPodUID] == "" {
			return errors.New("names no pod")
		}
	case kindCard:
		switch c.Action {
		case plans.ActionProgram:
			_, err := b.image(desired, c.After)
			return err
		case plans.ActionSetVFs:
			if c.After == nil || c.After.VFs == nil {
				return errors.New("set-vfs names no VF count")
			}
		default:
			return fmt.Errorf("action %s on a card is not Kubernetes's", c.Action)
		}
	default:
		return fmt.Errorf("object %s is not Kubernetes's", c.Object)
	}
	return nil
}

// Apply carries out one change. What the changes it depends on did is
// found again on the platform: the card is read from its agent, the
// slice and the claims from the API server.
func (b *Backend) Apply(ctx context.Context, desired *spec.Fleet, c *plans.Change) error {
	b.log.Info("kubernetes: apply", "change", c.ID)
	k := kindOf(c)
	if k == kindClass {
		return b.applyClass(ctx, c.After.Attrs)
	}
	node, ok := desired.Node(c.Node)
	if !ok {
		return fmt.Errorf("node %s is not in the desired state", c.Node)
	}
	switch {
	case k == kindDevices && withdraws(c):
		names := splitList(c.Before.Attrs[attrDevices])
		slot := c.Before.Attrs[AttrSlot]
		return b.editSlice(ctx, node.Kubernetes, func(d *resourceapi.Device) bool {
			return slices.Contains(names, d.Name) || slot != "" && attrOf(d, AttrSlot) == slot
		}, nil)
	case k == kindDevices && (c.Action == plans.ActionAttach || c.Action == plans.ActionUpdate):
		return b.offer(ctx, node, c)
	case k == kindEviction:
		return b.evict(ctx, c.Before)
	case k == kindCard && c.Action == plans.ActionProgram:
		img, err := b.image(desired, c.After)
		if err != nil {
			return err
		}
		if err := b.free(ctx, node, c.CardPCI, c.Card); err != nil {
			return err
		}
		return b.opts.Agents.Program(ctx, node, c.CardPCI, img)
	case k == kindCard && c.Action == plans.ActionSetVFs:
		if err := b.free(ctx, node, c.CardPCI, c.Card); err != nil {
			return err
		}
		return b.opts.Agents.SetVFs(ctx, node, c.CardPCI, *c.After.VFs)
	}
	return fmt.Errorf("action %s on %s is not Kubernetes's", c.Action, c.Object)
}

// withdraws reports whether a change of a card's devices takes them out
// of the slice: a detach, or the update to none that starts a reset.
func withdraws(c *plans.Change) bool {
	return c.Action == plans.ActionDetach || c.Action == plans.ActionUpdate && c.Before != nil && c.After != nil && c.After.Attrs[attrDevices] == ""
}

// applyClass creates the pool's DeviceClass, or sets its selector.
func (b *Backend) applyClass(ctx context.Context, a map[string]string) error {
	classes := b.client.ResourceV1().DeviceClasses()
	sel := []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{Expression: a[attrSelector]}}}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		have, err := classes.Get(ctx, a[attrName], metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = classes.Create(ctx, &resourceapi.DeviceClass{
				ObjectMeta: metav1.ObjectMeta{Name: a[attrName], Labels: map[string]string{LabelManagedBy: ManagedBy}},
				Spec:       resourceapi.DeviceClassSpec{Selectors: sel},
			}, metav1.CreateOptions{})
			return wrapAPI("create DeviceClass "+a[attrName], err)
		}
		if err != nil {
			return wrapAPI("get DeviceClass "+a[attrName], err)
		}
		have.Spec.Selectors = sel
		if have.Labels == nil {
			have.Labels = map[string]string{}
		}
		have.Labels[LabelManagedBy] = ManagedBy
		_, err = classes.Update(ctx, have, metav1.UpdateOptions{})
		return wrapAPI("update DeviceClass "+a[attrName], err)
	})
}

// attrOf is a device's string attribute in the driver's domain.
func attrOf(d *resourceapi.Device, name string) string {
	for _, k := range []string{name, DriverName + "/" + name} {
		if v, ok := d.Attributes[resourceapi.QualifiedName(k)]; ok && v.StringValue != nil {
			return *v.StringValue
		}
	}
	return ""
}

// editSlice rewrites the node's ResourceSlice: the devices drop removes
// go, then add's come, and the pool's generation goes up, so that the
// scheduler takes the new devices. It creates the slice for the first
// devices, and starts again when another writer got there first.
func (b *Backend) editSlice(ctx context.Context, kubeNode string, drop func(*resourceapi.Device) bool, add []resourceapi.Device) error {
	slicesAPI := b.client.ResourceV1().ResourceSlices()
	name := SliceName(kubeNode)
	// Cards of a node change in parallel: another card's change may have
	// updated the slice, or created it, since it was read.
	again := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	return retry.OnError(sliceBackoff, again, func() error {
		s, err := slicesAPI.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if len(add) == 0 {
				return nil
			}
			node := kubeNode
			meta := metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: ManagedBy}}
			// Owned by its Node, the slice goes when the node does.
			if n, err := b.client.CoreV1().Nodes().Get(ctx, kubeNode, metav1.GetOptions{}); err == nil {
				meta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}}
			}
			_, err = slicesAPI.Create(ctx, &resourceapi.ResourceSlice{
				ObjectMeta: meta,
				Spec: resourceapi.ResourceSliceSpec{
					Driver: DriverName, NodeName: &node,
					Pool:    resourceapi.ResourcePool{Name: kubeNode, Generation: 1, ResourceSliceCount: 1},
					Devices: add,
				},
			}, metav1.CreateOptions{})
			return wrapAPI("create ResourceSlice "+name, err)
		}
		if err != nil {
			return wrapAPI("get ResourceSlice "+name, err)
		}
		kept := slices.DeleteFunc(slices.Clone(s.Spec.Devices), func(d resourceapi.Device) bool {
			return drop(&d) || slices.ContainsFunc(add, func(a resourceapi.Device) bool { return a.Name == d.Name })
		})
		devs := append(kept, add...)
		slices.SortFunc(devs, func(x, y resourceapi.Device) int { return strings.Compare(x.Name, y.Name) })
		if len(devs) == len(s.Spec.Devices) && len(add) == 0 {
			return nil // nothing of ours was offered
		}
		s.Spec.Devices = devs
		s.Spec.Pool.Generation++
		_, err = slicesAPI.Update(ctx, s, metav1.UpdateOptions{})
		return wrapAPI("update ResourceSlice "+name, err)
	})
}

// sliceBackoff spaces the attempts of a slice's writers that collide:
// enough of them, with jitter, for every card of a node at once.
var sliceBackoff = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 1, Cap: time.Second}

// offer publishes the card's devices as the change says, after reading
// the card: it must read healthy and run the bitstream the devices
// announce, and its VFs must be on.
func (b *Backend) offer(ctx context.Context, node *spec.Node, c *plans.Change) error {
	dev, err := b.card(ctx, node, c.CardPCI)
	if err != nil {
		return err
	}
	o := offerOf(c.After.Attrs)
	if !dev.Health.OK() {
		return fmt.Errorf("not offering card %s: it reports %s", c.CardPCI, strings.Join(dev.Health.Problems, "; "))
	}
	if afu := dev.AFUID(); afu != "" && afu != o.attrs[AttrAFUID] {
		return fmt.Errorf("not offering card %s: it runs AFU %s, not %s (%s)", c.CardPCI, afu, o.attrs[AttrAFUID], o.attrs[AttrBitstream])
	}
	var vfs []Function
	for _, vf := range dev.VFs {
		vfs = append(vfs, Function{Index: vf.Index, PCI: vf.PCI})
	}
	devs, ok := o.devices(dev.PCI, vfs)
	if !ok {
		return fmt.Errorf("not offering card %s: a function a binding gives out is not on (%d VF(s) on)", c.CardPCI, dev.NumVFs)
	}
	add := make([]resourceapi.Device, len(devs))
	for i, d := range devs {
		add[i] = resourceapi.Device{Name: d.Name, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{}}
		for k, v := range d.Attrs {
			add[i].Attributes[resourceapi.QualifiedName(k)] = resourceapi.DeviceAttribute{StringValue: &v}
		}
	}
	slot := c.Card
	return b.editSlice(ctx, node.Kubernetes, func(d *resourceapi.Device) bool { return attrOf(d, AttrSlot) == slot }, add)
}

// card reads one card from the node's agent.
func (b *Backend) card(ctx context.Context, node *spec.Node, pci string) (*fpga.Device, error) {
	devs, err := b.opts.Agents.ObserveCards(ctx, node)
	if err != nil {
		return nil, err
	}
	return fpga.Lookup(devs, pci)
}

// free makes sure, just before the card is reset, that the slice offers
// none of its devices and that no pod that still exists is reserved a
// claim that holds one: a pod may have got the card since the plan.
func (b *Backend) free(ctx context.Context, node *spec.Node, pci, slot string) error {
	dev, err := b.card(ctx, node, pci)
	if err != nil {
		return err
	}
	names := []string{DeviceName(dev.PCI)}
	for _, vf := range dev.VFs {
		names = append(names, DeviceName(vf.PCI))
	}
	err = b.editSlice(ctx, node.Kubernetes, func(d *resourceapi.Device) bool {
		return slices.Contains(names, d.Name) || attrOf(d, AttrSlot) == slot
	}, nil)
	if err != nil {
		return err
	}
	claims, err := b.client.ResourceV1().ResourceClaims(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return wrapAPI("list ResourceClaims", err)
	}
	for _, c := range claims.Items {
		if c.Status.Allocation == nil {
			continue
		}
		for _, r := range c.Status.Allocation.Devices.Results {
			if r.Driver != DriverName || r.Pool != node.Kubernetes || !slices.Contains(names, r.Device) {
				continue
			}
			for _, ref := range c.Status.ReservedFor {
				if ref.Resource != "pods" {
					continue
				}
				pod, err := b.client.CoreV1().Pods(c.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					continue
				}
				if err != nil {
					return wrapAPI("get pod "+c.Namespace+"/"+ref.Name, err)
				}
				if pod.UID == ref.UID && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
					return fmt.Errorf("refusing to reset card %s: pod %s/%s still holds %s through claim %s", pci, c.Namespace, ref.Name, r.Device, c.Name)
				}
			}
		}
	}
	return nil
}

// image is the bitstream to program: the repository's, read through its
// reader with the declared digest, or its URL for the agent to fetch and
// check.
func (b *Backend) image(desired *spec.Fleet, v *plans.Value) (providers.Image, error) {
	if v == nil {
		return providers.Image{}, errors.New("program names no bitstream")
	}
	bs, ok := desired.Bitstream(v.Bitstream)
	if !ok {
		return providers.Image{}, fmt.Errorf("bitstream %s is not in the desired state", v.Bitstream)
	}
	if bs.SHA256 != v.SHA256 || bs.AFUID != v.AFUID {
		return providers.Image{}, fmt.Errorf("bitstream %s differs from the one planned", bs.Name)
	}
	if bs.File == "" {
		return providers.Image{Bitstream: *bs}, nil
	}
	repo, err := spec.OpenRepo(desired.Root)
	if err != nil {
		return providers.Image{}, err
	}
	defer repo.Close()
	data, err := repo.ReadBitstream(*bs, desired.Policy.MaxBitstreamBytes())
	if err != nil {
		return providers.Image{}, err
	}
	return providers.Image{Bitstream: *bs, Data: data}, nil
}

// evict evicts the pod through the Eviction API, only the pod the plan
// saw (its UID), and waits until it is gone. A PodDisruptionBudget that
// refuses is a passing fault: the executor tries again, then gives up
// and the card is not reset.
func (b *Backend) evict(ctx context.Context, v *plans.Value) error {
	ns, name, _ := strings.Cut(v.VM, "/")
	uid := types.UID(v.Attrs[attrPodUID])
	err := b.client.CoreV1().Pods(ns).EvictV1(ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: name, Namespace: ns},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}},
	})
	switch {
	case err == nil:
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err) && isUIDConflict(err):
		return nil // another pod has the name now: the one planned is gone
	case apierrors.IsTooManyRequests(err):
		return providers.Transient(fmt.Errorf("evict pod %s: refused: %s", v.VM, budgetCause(err)))
	default:
		return wrapAPI("evict pod "+v.VM, err)
	}
	return b.waitGone(ctx, ns, name, uid)
}

// isUIDConflict reports whether a conflict is the UID precondition's.
func isUIDConflict(err error) bool {
	return strings.Contains(err.Error(), "UID")
}

// budgetCause is what the API server says of the disruption budget that
// refused an eviction.
func budgetCause(err error) string {
	var se *apierrors.StatusError
	if errors.As(err, &se) && se.ErrStatus.Details != nil {
		for _, c := range se.ErrStatus.Details.Causes {
			if c.Type == policyv1.DisruptionBudgetCause {
				return c.Message
			}
		}
	}
	return err.Error()
}

// waitGone waits, within the eviction timeout, until the pod is gone: its
// containers stopped and the kubelet deleted it.
func (b *Backend) waitGone(parent context.Context, ns, name string, uid types.UID) error {
	ctx, cancel := context.WithTimeout(parent, b.evictionTimeout())
	defer cancel()
	for {
		pod, err := b.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err), err == nil && pod.UID != uid:
			return nil
		case err != nil && ctx.Err() == nil:
			return wrapAPI("wait for pod "+ns+"/"+name+" to go", err)
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("pod %s/%s is not gone %s after its eviction", ns, name, b.evictionTimeout())
		case <-time.After(b.poll()):
		}
	}
}

// wrapAPI names what failed; answers a retry may cure are transient.
func wrapAPI(what string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", what, err)
	if apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) || apierrors.IsConflict(err) {
		return providers.Transient(err)
	}
	return err
}
