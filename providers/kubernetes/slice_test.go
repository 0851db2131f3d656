package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cards of a node change in parallel, each rewriting its devices in
// the node's one slice: no change may lose another's, whether the slice
// exists yet or not, and each raises the pool's generation.
func TestSliceEditsKeepEachOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := NewBackend(Options{Config: cluster.Config}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const node, cards = "kube-slices", 8
	// The cluster lives for the package: leave no slice to a next run.
	t.Cleanup(func() {
		if err := cluster.Client.ResourceV1().ResourceSlices().Delete(context.Background(), SliceName(node), metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, cards)
	for i := range cards {
		wg.Go(func() {
			slot := fmt.Sprintf("pac%d", i)
			v := slot
			d := resourceapi.Device{Name: DeviceName(fmt.Sprintf("0000:%02x:00.0", i+1)), Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{AttrSlot: {StringValue: &v}}}
			errs[i] = b.editSlice(ctx, node, func(d *resourceapi.Device) bool { return attrOf(d, AttrSlot) == slot }, []resourceapi.Device{d})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := cluster.Client.ResourceV1().ResourceSlices().Get(ctx, SliceName(node), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var slots []string
	for i := range s.Spec.Devices {
		slots = append(slots, attrOf(&s.Spec.Devices[i], AttrSlot))
	}
	slices.Sort(slots)
	if len(slots) != cards || s.Spec.Pool.Generation != cards || s.Spec.Pool.Name != node || s.Spec.Driver != DriverName {
		t.Errorf("slice has %v at generation %d, want %d cards at generation %d", slots, s.Spec.Pool.Generation, cards, cards)
	}

	// Withdrawing one card's devices leaves the others.
	if err := b.editSlice(ctx, node, func(d *resourceapi.Device) bool { return attrOf(d, AttrSlot) == "pac3" }, nil); err != nil {
		t.Fatal(err)
	}
	s, err = cluster.Client.ResourceV1().ResourceSlices().Get(ctx, SliceName(node), metav1.GetOptions{})
	if err != nil || len(s.Spec.Devices) != cards-1 || slices.ContainsFunc(s.Spec.Devices, func(d resourceapi.Device) bool { return attrOf(&d, AttrSlot) == "pac3" }) {
		t.Errorf("after withdrawing pac3: %+v, %v", s.Spec.Devices, err)
	}
}
