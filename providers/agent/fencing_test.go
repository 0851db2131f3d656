package agent_test

import (
	"context"
	"net/http/httptest"
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
	older, newer := agent.WithFencingToken(ctx, 41), agent.WithFencingToken(ctx, 42)
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
