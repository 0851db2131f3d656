package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/spec"
)

// slowProvider answers per node after a delay, fails for some nodes, and
// hangs for others until the context ends; it records the highest number
// of calls in flight.
type slowProvider struct {
	delay             time.Duration
	fail, hang        map[string]bool
	inFlight, maxSeen atomic.Int32
}

func (s *slowProvider) ObserveCards(ctx context.Context, n *spec.Node) ([]fpga.Device, error) {
	cur := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxSeen.Load()
		if cur <= m || s.maxSeen.CompareAndSwap(m, cur) {
			break
		}
	}
	if s.hang[n.Name] {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.fail[n.Name] {
		return nil, errors.New("agent: connection refused")
	}
	return []fpga.Device{{PCI: "0000:5e:00.0", Board: "pac-n3000"}}, nil
}
func (s *slowProvider) SetVFs(context.Context, *spec.Node, string, int) error {
	return errors.New("unused")
}
func (s *slowProvider) Program(context.Context, *spec.Node, string, providers.Image) error {
	return errors.New("unused")
}
func (s *slowProvider) ObserveVMs(context.Context, *spec.Node) ([]observed.VM, error) {
	return []observed.VM{{Name: "vnf-a", Running: true}}, nil
}
func (s *slowProvider) Attach(context.Context, *spec.Node, string, string) error {
	return errors.New("unused")
}
func (s *slowProvider) Detach(context.Context, *spec.Node, string, string) error {
	return errors.New("unused")
}

func TestObserveMarksUnreachableNodesUnknown(t *testing.T) {
	fleet := &spec.Fleet{}
	for _, n := range []string{"c-05", "c-01", "c-03", "c-02", "c-04", "c-06"} {
		fleet.Nodes = append(fleet.Nodes, spec.Node{Name: n})
	}
	p := &slowProvider{delay: 5 * time.Millisecond, fail: map[string]bool{"c-02": true}, hang: map[string]bool{"c-04": true}}
	obs, err := engine.Observe(context.Background(), fleet, p, 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.maxSeen.Load(); got > 2 {
		t.Errorf("%d nodes observed at once, limit 2", got)
	}
	var names []string
	for _, n := range obs.Nodes {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "c-01,c-02,c-03,c-04,c-05,c-06" {
		t.Errorf("nodes %v not sorted", names)
	}
	for _, n := range obs.Nodes {
		switch n.Name {
		case "c-02":
			if n.State != observed.NodeUnknown || !strings.Contains(n.Reason, "connection refused") {
				t.Errorf("c-02: %s %q, want unknown with the reason", n.State, n.Reason)
			}
		case "c-04":
			if n.State != observed.NodeUnknown || !strings.Contains(n.Reason, "deadline exceeded") {
				t.Errorf("c-04: %s %q, want unknown after the timeout", n.State, n.Reason)
			}
		default:
			if n.State != observed.NodeOK || len(n.FPGAs) != 1 || len(n.VMs) != 1 {
				t.Errorf("%s: %+v, want observed", n.Name, n)
			}
		}
	}
}

func TestObserveStopsWithContext(t *testing.T) {
	fleet := &spec.Fleet{Nodes: []spec.Node{{Name: "a"}, {Name: "b"}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := engine.Observe(ctx, fleet, &slowProvider{delay: time.Second}, 1, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
