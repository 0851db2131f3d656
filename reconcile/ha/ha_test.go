package ha_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/reconcile/ha"
	"github.com/fpgaops/fpgaops/reconcile/ha/etcdtest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/reconcile/state/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ttl is the tests' lease: short, so that they run fast; the waits are
// bounded far above it.
const ttl = 2 * time.Second

// bound keeps a broken election from hanging a test.
const bound = 60 * time.Second

func elector(t *testing.T, c *clientv3.Client, name string) *ha.Elector {
	t.Helper()
	e, err := ha.New(ha.Config{Client: c, Prefix: "/fpgaops/t", Identity: name, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// campaign runs Lead in the background; the channel gets its term.
func campaign(t *testing.T, e *ha.Elector) <-chan context.Context {
	t.Helper()
	ch := make(chan context.Context, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		term, err := e.Lead(ctx)
		if err == nil {
			ch <- term
		}
	}()
	return ch
}

func waitTerm(t *testing.T, ch <-chan context.Context, who string) context.Context {
	t.Helper()
	select {
	case term := <-ch:
		return term
	case <-time.After(bound):
		t.Fatalf("%s never led", who)
		return nil
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOneLeaderAtATime: of three candidates one leads, the others wait
// and know who leads; when the leader gives up, one of them leads with a
// higher term, and the old term's token is what its context carries.
func TestOneLeaderAtATime(t *testing.T) {
	c := etcdtest.Client(t, etcdtest.Start(t, 1).Endpoints()...)
	names := []string{"a", "b", "c"}
	electors := map[string]*ha.Elector{}
	terms := map[string]<-chan context.Context{}
	for _, n := range names {
		electors[n] = elector(t, c, n)
		terms[n] = campaign(t, electors[n])
	}
	var first string
	var firstTerm context.Context
	select {
	case firstTerm = <-terms["a"]:
		first = "a"
	case firstTerm = <-terms["b"]:
		first = "b"
	case firstTerm = <-terms["c"]:
		first = "c"
	case <-time.After(bound):
		t.Fatal("nobody leads")
	}
	lead := electors[first].Leader()
	tok, ok := agent.FencingToken(firstTerm)
	if !lead.Leading || !ok || tok != lead.Term || tok == 0 {
		t.Fatalf("leader %s: %+v, its term carries token %d", first, lead, tok)
	}
	for _, n := range names {
		if n == first {
			continue
		}
		eventually(t, n+" to see the leader", func() bool { return electors[n].Leader().Leader == first })
		if s := electors[n].Leader(); s.Leading {
			t.Fatalf("%s leads too: %+v", n, s)
		}
		if _, err := electors[n].Guard(); !errors.Is(err, etcdstore.ErrNotLeader) || !strings.Contains(err.Error(), "the leader is "+first) {
			t.Fatalf("%s's guard: %v; want not the leader, naming %s", n, err, first)
		}
	}

	// The leader steps down: the next leads at once, with a higher term.
	if err := electors[first].Close(); err != nil {
		t.Fatal(err)
	}
	if firstTerm.Err() == nil {
		t.Fatal("the term outlived Close")
	}
	var second string
	var secondTerm context.Context
	select {
	case secondTerm = <-terms[next(first, "a")]:
		second = next(first, "a")
	case secondTerm = <-terms[next(first, "b")]:
		second = next(first, "b")
	case <-time.After(bound):
		t.Fatal("nobody took over")
	}
	tok2, _ := agent.FencingToken(secondTerm)
	if tok2 <= tok {
		t.Fatalf("the second leader's token %d is not above the first's %d", tok2, tok)
	}
	if s := electors[second].Leader(); s.Elections != 1 || s.Leader != second {
		t.Fatalf("%s after its election: %+v", second, s)
	}
}

// next names a candidate other than the first one: the two that remain
// are next(first, "a") and next(first, "b").
func next(first, which string) string {
	rest := []string{}
	for _, n := range []string{"a", "b", "c"} {
		if n != first {
			rest = append(rest, n)
		}
	}
	if which == "a" {
		return rest[0]
	}
	return rest[1]
}

// TestPartitionedLeaderLosesTheLead cuts the leader off from etcd: its
// lease expires, its term ends, another leads, and the store refuses
// whatever the old one still writes.
func TestPartitionedLeaderLosesTheLead(t *testing.T) {
	cluster := etcdtest.Start(t, 3)
	proxy := etcdtest.NewProxy(t, cluster.Members[0].ClientURL)
	cut := etcdtest.Client(t, proxy.URL())
	other := etcdtest.Client(t, cluster.Members[1].ClientURL)

	old := elector(t, cut, "old")
	oldTerm := waitTerm(t, campaign(t, old), "old")
	oldStore, _ := etcdstore.New(cut, etcdstore.Options{Prefix: "/fpgaops/t", Guard: old.Guard})
	if err := oldStore.AddRun(&state.Run{Trigger: "start"}); err != nil {
		t.Fatal(err)
	}
	next := elector(t, other, "new")
	nextTerms := campaign(t, next)

	proxy.Cut()
	select {
	case <-oldTerm.Done():
	case <-time.After(bound):
		t.Fatal("the partitioned leader's term did not end")
	}
	nextTerm := waitTerm(t, nextTerms, "new")
	oldTok, _ := agent.FencingToken(oldTerm)
	newTok, _ := agent.FencingToken(nextTerm)
	if newTok <= oldTok {
		t.Fatalf("new token %d not above the old %d", newTok, oldTok)
	}
	if _, err := old.Guard(); !errors.Is(err, etcdstore.ErrNotLeader) {
		t.Fatalf("the old leader's guard: %v", err)
	}

	// Healed, the old leader's late write is still refused: it knows, and
	// etcd would refuse it anyway.
	proxy.Heal()
	err := oldStore.AddRun(&state.Run{Trigger: "late"})
	if !errors.Is(err, etcdstore.ErrNotLeader) {
		t.Fatalf("the old leader's write after the partition: %v", err)
	}
	newStore, _ := etcdstore.New(other, etcdstore.Options{Prefix: "/fpgaops/t", Guard: next.Guard})
	runs, err := newStore.Runs(0)
	if err != nil || len(runs) != 1 || runs[0].Trigger != "start" {
		t.Fatalf("history %+v, %v; want only the run from before the partition", runs, err)
	}
	eventually(t, "the old leader to see the new", func() bool { return old.Leader().Leader == "new" })
}
