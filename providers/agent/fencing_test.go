package agent_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// TestFencingTokenTravelsWithTheContext shows every request made under a
// leader term's context carries its token, to an agent that keeps them:
// the older term's requests, reads and changes, are refused, not retried.
func TestFencingTokenTravelsWithTheContext(t *testing.T) {
	fence, err := agentapi.OpenFence("", false)
	if err != nil {
		t.Fatal(err)
	}
	h := agenttest.NewMemHost()
	srv := httptest.NewServer(agentapi.NewHandler(h, agentapi.Server{Fence: fence}))
	t.Cleanup(srv.Close)
	node := &spec.Node{Name: "compute-01", Endpoint: srv.URL}
	c := agent.NewClient(nil)
	ctx := context.Background()

	// Without a token (one controller alone), nothing is fenced.
	if err := c.SetVFs(ctx, node, agenttest.CardPCI, 1); err != nil {
		t.Fatal(err)
	}
	if got := fence.Token(""); got != 0 {
		t.Fatalf("a request without a token set the fence to %d", got)
	}
	older, newer := agent.WithTerm(ctx, 41, nil), agent.WithTerm(ctx, 42, nil)
	if _, err := c.ObserveCards(newer, node); err != nil {
		t.Fatal(err)
	}
	if got := fence.Token(""); got != 42 {
		t.Fatalf("fence holds %d after the newer term's read; want 42", got)
	}
	for name, call := range map[string]func() error{
		"read":   func() error { _, err := c.ObserveCards(older, node); return err },
		"change": func() error { return c.SetVFs(older, node, agenttest.CardPCI, 0) },
	} {
		err := call()
		if !agent.IsFenced(err) || providers.IsTransient(err) {
			t.Fatalf("older term's %s: %v; want it fenced, not transient", name, err)
		}
	}
	if h.Device().NumVFs != 1 {
		t.Fatal("the older term changed the card")
	}
	if tok, ok := agent.FencingToken(context.WithoutCancel(newer)); !ok || tok != 42 {
		t.Fatalf("a context detached from the term's cancel carries %d, %v; want 42", tok, ok)
	}
}

// TestEndedTermSendsNothing shows a controller that knows its term ended
// sends no request at all, reads included.
func TestEndedTermSendsNothing(t *testing.T) {
	h := agenttest.NewMemHost()
	requests := 0
	inner := agentapi.NewHandler(h, agentapi.Server{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	node := &spec.Node{Name: "compute-01", Endpoint: srv.URL}
	ended := make(chan struct{})
	ctx := context.WithoutCancel(agent.WithTerm(context.Background(), 7, ended))
	c := agent.NewClient(nil)
	if err := c.SetVFs(ctx, node, agenttest.CardPCI, 1); err != nil {
		t.Fatal(err)
	}
	close(ended)
	err := c.SetVFs(ctx, node, agenttest.CardPCI, 0)
	if !errors.Is(err, agent.ErrTermEnded) || !agent.IsFenced(err) || !strings.Contains(err.Error(), "compute-01") {
		t.Fatalf("a change after the term ended: %v; want ErrTermEnded naming the node", err)
	}
	if _, err := c.ObserveCards(ctx, node); !errors.Is(err, agent.ErrTermEnded) {
		t.Fatalf("a read after the term ended: %v", err)
	}
	if requests != 1 || h.Device().NumVFs != 1 {
		t.Fatalf("%d requests reached the agent, card has %d VFs; want 1 and 1", requests, h.Device().NumVFs)
	}
}
