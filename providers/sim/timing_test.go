package sim_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
)

// sleeps records the modelled time the sim spends, without spending it.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return nil
}

// take returns what was recorded since the last take.
func (s *sleeps) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.d
	s.d = nil
	return d
}

func TestModelledTimes(t *testing.T) {
	const (
		pr     = 3 * time.Second
		vf     = 5 * time.Second
		attach = 7 * time.Second
	)
	rec := &sleeps{}
	f := start(t, testFleet(), sim.Options{Timing: sim.Timing{Program: pr, VFs: vf, Attach: attach}, Sleep: rec.sleep})
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	nlb := image(t, "nlb", afuNLB)
	steps := []struct {
		name    string
		do      func() error
		wantErr bool
		want    []time.Duration
	}{
		{"program with VFs off", func() error { return f.cards.Program(ctx, f.node, pci, nlb) }, false, []time.Duration{pr}},
		{"VFs on", func() error { return f.cards.SetVFs(ctx, f.node, pci, 1) }, false, []time.Duration{vf}},
		{"VFs unchanged", func() error { return f.cards.SetVFs(ctx, f.node, pci, 1) }, false, nil},
		{"program with VFs on: off, PR, on", func() error { return f.cards.Program(ctx, f.node, pci, nlb) }, false, []time.Duration{vf, pr, vf}},
		{"attach the VF", func() error { return f.vms.Attach(ctx, f.node, "db-01", "0000:5e:00.1") }, false, []time.Duration{attach}},
		{"attach it again", func() error { return f.vms.Attach(ctx, f.node, "db-01", "0000:5e:00.1") }, false, nil},
		{"program under a running VM", func() error { return f.cards.Program(ctx, f.node, pci, nlb) }, true, nil},
		{"detach the VF", func() error { return f.vms.Detach(ctx, f.node, "db-01", "0000:5e:00.1") }, false, []time.Duration{attach}},
		{"VFs off", func() error { return f.cards.SetVFs(ctx, f.node, pci, 0) }, false, []time.Duration{vf}},
		{"program an image for another interface", func() error {
			return f.cards.Program(ctx, f.node, "0000:af:00.0", nlb)
		}, true, nil},
	}
	for _, s := range steps {
		err := s.do()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: err = %v; want error %v", s.name, err, s.wantErr)
		}
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: modelled times %v; want %v", s.name, got, s.want)
		}
	}
}

// gate holds every modelled sleep until released, and tells who entered.
type gate struct {
	entered chan string
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan string, 16), release: make(chan struct{})} }

func (g *gate) sleep(ctx context.Context, d time.Duration) error {
	g.entered <- d.String()
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait fails the test unless n sleeps have entered within a generous
// bound: what is measured is whether they can, not how fast.
func (g *gate) wait(t *testing.T, n int, what string) {
	t.Helper()
	for i := range n {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: %d of %d changes entered their modelled time", what, i, n)
		}
	}
}

func TestCardsChangeInParallel(t *testing.T) {
	g := newGate()
	f := start(t, testFleet(), sim.Options{Timing: sim.Timing{Program: time.Hour}, Sleep: g.sleep})
	ctx := context.Background()
	errs := make(chan error, 2)
	// Two cards of the same node: an A10 image would not fit the N3000,
	// so each gets an image for its own interface.
	a10 := f.card(t, "0000:af:00.0").InterfaceID
	go func() { errs <- f.cards.Program(ctx, f.node, "0000:5e:00.0", image(t, "nlb", afuNLB)) }()
	go func() { errs <- f.cards.Program(ctx, f.node, "0000:af:00.0", imageFor(t, a10, "dma", afuDMA)) }()
	g.wait(t, 2, "two cards of one node programming at once")

	// While both PRs run, the node and the fleet still answer.
	answered := make(chan error, 1)
	go func() {
		_, err := f.cards.ObserveCards(ctx, f.node)
		f.sim.Stats()
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("inventory and stats wait for PRs in flight")
	}
	close(g.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := f.sim.Stats(); st.Programs != 2 {
		t.Fatalf("stats %+v; want 2 programs", st)
	}
}

func TestCardProgramsOneImageAtATime(t *testing.T) {
	g := newGate()
	f := start(t, testFleet(), sim.Options{Timing: sim.Timing{Program: time.Hour}, Sleep: g.sleep})
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	errs := make(chan error, 2)
	go func() { errs <- f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)) }()
	g.wait(t, 1, "first program")
	go func() { errs <- f.cards.Program(ctx, f.node, pci, image(t, "dma", afuDMA)) }()
	// The second has ample time to reach the card; it must wait there.
	select {
	case <-g.entered:
		t.Fatal("a second PR started on a card whose first is still running")
	case <-time.After(200 * time.Millisecond):
	}
	g.release <- struct{}{}
	g.wait(t, 1, "second program, after the first")
	close(g.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if d := f.card(t, pci); d.AFUID() != afuDMA {
		t.Fatalf("card runs %s; want the second image, %s", d.AFUID(), afuDMA)
	}
}

func TestProgramJitter(t *testing.T) {
	const pr, jitter = 2 * time.Second, time.Second
	run := func(seed int64) []time.Duration {
		rec := &sleeps{}
		f := start(t, testFleet(), sim.Options{Timing: sim.Timing{Program: pr, ProgramJitter: jitter}, Seed: seed, Sleep: rec.sleep})
		for range 20 {
			if err := f.cards.Program(context.Background(), f.node, "0000:5e:00.0", image(t, "nlb", afuNLB)); err != nil {
				t.Fatal(err)
			}
		}
		return rec.take()
	}
	a, b, c := run(1), run(1), run(2)
	if len(a) != 20 {
		t.Fatalf("%d modelled PRs; want 20", len(a))
	}
	for _, d := range a {
		if d < pr || d >= pr+jitter {
			t.Fatalf("a PR took %v; want within [%v, %v)", d, pr, pr+jitter)
		}
	}
	if slices.Min(a) == slices.Max(a) {
		t.Errorf("every PR took %v: no jitter", a[0])
	}
	if !slices.Equal(a, b) {
		t.Error("the same seed drew other PR times")
	}
	if slices.Equal(a, c) {
		t.Error("another seed drew the very same PR times")
	}
}

func TestCloseCutsModelledTimeShort(t *testing.T) {
	// No Sleep hook: the sim's own timers, an hour long.
	f := start(t, testFleet(), sim.Options{Timing: sim.Timing{Program: time.Hour, Attach: time.Hour}})
	ctx := context.Background()
	const pci, a10 = "0000:5e:00.0", "0000:af:00.0"
	fresh := f.card(t, pci)
	before := fresh.AFUID()
	errs := make(chan error, 2)
	go func() { errs <- f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)) }()
	go func() { errs <- f.vms.Attach(ctx, f.node, "db-01", a10) }()
	for f.sim.Stats().Requests < 2 {
		time.Sleep(time.Millisecond) // both requests in, or about to be
	}
	if err := f.sim.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var err error
		select {
		case err = <-errs:
		case <-time.After(10 * time.Second):
			t.Fatal("a change in its modelled time outlived Close")
		}
		var apiErr *agentapi.Error
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
			t.Fatalf("change cut short: err = %v; want 503", err)
		}
	}
	if d := f.card(t, pci); d.AFUID() != before {
		t.Errorf("card runs %s after a PR cut short; want %s still", d.AFUID(), before)
	}
	vms, err := f.vms.ObserveVMs(ctx, f.node)
	if err != nil {
		t.Fatal(err)
	}
	if st := f.sim.Stats(); len(vms[0].Hostdevs) != 0 || st.Refused != 0 || st.Programs+st.Attaches != 0 {
		t.Errorf("after Close: VM %+v, stats %+v; want nothing held, changed or refused", vms[0], st)
	}
}

func TestSetTiming(t *testing.T) {
	rec := &sleeps{}
	f := start(t, testFleet(), sim.Options{Sleep: rec.sleep})
	program := func() {
		t.Helper()
		if err := f.cards.Program(context.Background(), f.node, "0000:5e:00.0", image(t, "nlb", afuNLB)); err != nil {
			t.Fatal(err)
		}
	}
	program()
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("modelled times %v without a timing; want none", got)
	}
	if err := f.sim.SetTiming(sim.Timing{Program: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	program()
	if got := rec.take(); !slices.Equal(got, []time.Duration{4 * time.Second}) {
		t.Fatalf("modelled times %v after SetTiming; want [4s]", got)
	}

	bad := sim.Timing{Program: -1, ProgramJitter: -2, VFs: -3, Attach: -4}
	for what, err := range map[string]error{
		"SetTiming": f.sim.SetTiming(bad),
		"New":       func() error { _, err := sim.New(testFleet(), sim.Options{Timing: bad, Latency: -5}); return err }(),
	} {
		if err == nil {
			t.Fatalf("%s with negative times succeeded", what)
		}
		for _, w := range []string{"program time -1ns", "program jitter -2ns", "VF time -3ns", "attach time -4ns"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want every mistake, %q among them", what, err, w)
			}
		}
	}
	if got := f.sim.Timing(); got.Program != 4*time.Second {
		t.Fatalf("timing %+v after a refused SetTiming; want it unchanged", got)
	}
}
