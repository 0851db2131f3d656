package agent_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
)

// fenced sends one request with a fencing token (0: none).
func fenced(t *testing.T, method, url string, token uint64, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token > 0 {
		req.Header.Set(agent.FencingHeader, strconv.FormatUint(token, 10))
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return send(t, req)
}

func openFence(t *testing.T, dir string, require bool) *agent.Fence {
	t.Helper()
	f, err := agent.OpenFence(dir, require)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFenceRefusesOlderTokens walks one agent through the tokens two
// controllers send: every request is checked, reads too, and a refused
// change never reaches the host.
func TestFenceRefusesOlderTokens(t *testing.T) {
	h := agenttest.NewMemHost()
	base := serve(t, h, agent.Server{Fence: openFence(t, "", false)})
	vfs := base + "/v1/cards/" + cardPCI + "/vfs"
	steps := []struct {
		name   string
		method string
		url    string
		token  uint64
		body   string
		status int
		code   string
		numVFs int
	}{
		{"no token is accepted unless required", "PUT", vfs, 0, `{"count": 1}`, 200, "", 1},
		{"the first token is taken", "PUT", vfs, 7, `{"count": 0}`, 200, "", 0},
		{"the same token again", "PUT", vfs, 7, `{"count": 1}`, 200, "", 1},
		{"a newer leader's read raises it", "GET", base + "/v1/inventory", 9, "", 200, "", 1},
		{"the older leader's change is refused", "PUT", vfs, 7, `{"count": 0}`, 409, agent.CodeFenced, 1},
		{"the older leader's read is refused", "GET", base + "/v1/inventory", 8, "", 409, agent.CodeFenced, 1},
		{"the newer leader goes on", "PUT", vfs, 9, `{"count": 0}`, 200, "", 0},
		{"a token that is not a number", "PUT", vfs, 0, `{"count": 1}`, 400, agent.CodeBadRequest, 0},
	}
	for _, s := range steps {
		var a answer
		if s.name == "a token that is not a number" {
			req, _ := http.NewRequest(s.method, s.url, strings.NewReader(s.body))
			req.Header.Set(agent.FencingHeader, "-3")
			req.Header.Set("Content-Type", "application/json")
			a = send(t, req)
		} else {
			a = fenced(t, s.method, s.url, s.token, s.body)
		}
		if a.status != s.status || (s.code != "" && (a.err == nil || a.err.Code != s.code)) {
			t.Fatalf("%s: %d %s; want %d %s", s.name, a.status, a.body, s.status, s.code)
		}
		if got := h.Device().NumVFs; got != s.numVFs {
			t.Fatalf("%s: card has %d VFs; want %d", s.name, got, s.numVFs)
		}
	}
	if a := fenced(t, "PUT", vfs, 7, `{"count": 1}`); a.err == nil || !strings.Contains(a.err.Message, "older than 9") {
		t.Fatalf("refusal %s; want it to name the newer token", a.body)
	}
}

func TestFenceRequired(t *testing.T) {
	h := agenttest.NewMemHost()
	base := serve(t, h, agent.Server{Fence: openFence(t, "", true)})
	a := fenced(t, "PUT", base+"/v1/cards/"+cardPCI+"/vfs", 0, `{"count": 1}`)
	wantAnswer(t, a, http.StatusPreconditionRequired, agent.CodeTokenRequired)
	if h.Device().NumVFs != 0 {
		t.Fatal("a request without a token changed the card")
	}
	wantAnswer(t, fenced(t, "PUT", base+"/v1/cards/"+cardPCI+"/vfs", 3, `{"count": 1}`), 200, "")
}

// TestFenceSurvivesRestart shows a restarted agent still refuses the
// older leader: the token is on disk before the raise is answered.
func TestFenceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first := serve(t, agenttest.NewMemHost(), agent.Server{Fence: openFence(t, dir, false)})
	wantAnswer(t, fenced(t, "GET", first+"/v1/inventory", 12, ""), 200, "")

	f := openFence(t, dir, false)
	if got := f.Token(""); got != 12 {
		t.Fatalf("reopened fence holds token %d; want 12", got)
	}
	h := agenttest.NewMemHost()
	second := serve(t, h, agent.Server{Fence: f})
	wantAnswer(t, fenced(t, "PUT", second+"/v1/cards/"+cardPCI+"/vfs", 11, `{"count": 1}`), 409, agent.CodeFenced)
	if h.Device().NumVFs != 0 {
		t.Fatal("the older leader changed the card after the restart")
	}
}

func TestFenceFileRefusedWhenNotOurs(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"not JSON", "tokens: 3\n", "fence.json:1:2: invalid character"},
		{"unknown field", `{"tokens": {}, "leader": "x"}`, "unknown field"},
		{"negative token", `{"tokens": {"": -1}}`, "fence.json:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, agent.FenceFile), []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := agent.OpenFence(dir, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenFence: %v; want an error with %q", err, tt.want)
			}
		})
	}
}

// slowHost holds every SetVFs until release is closed.
type slowHost struct {
	*agenttest.MemHost
	started chan struct{}
	release chan struct{}
}

func (h *slowHost) SetVFs(ctx context.Context, pci string, n int) error {
	close(h.started)
	<-h.release
	return h.MemHost.SetVFs(ctx, pci, n)
}

// TestFenceRaiseWaitsForOlderRequests shows a raise is answered only once
// the older leader's change in flight has finished: what the new leader
// then reads includes it, and nothing of the old one happens after.
func TestFenceRaiseWaitsForOlderRequests(t *testing.T) {
	h := &slowHost{MemHost: agenttest.NewMemHost(), started: make(chan struct{}), release: make(chan struct{})}
	base := serve(t, h, agent.Server{Fence: openFence(t, "", false)})
	old := make(chan answer, 1)
	go func() { old <- fenced(t, "PUT", base+"/v1/cards/"+cardPCI+"/vfs", 4, `{"count": 1}`) }()
	<-h.started
	read := make(chan answer, 1)
	go func() { read <- fenced(t, "GET", base+"/v1/inventory", 5, "") }()
	select {
	case a := <-read:
		t.Fatalf("the new leader's read was answered (%s) while the old leader's change was in flight", a.body)
	case <-time.After(200 * time.Millisecond):
	}
	close(h.release)
	wantAnswer(t, <-old, 200, "")
	a := <-read
	wantAnswer(t, a, 200, "")
	if !bytes.Contains(a.body, []byte(`"numVFs":1`)) {
		t.Fatalf("the new leader read %s; want the old leader's finished change (numVFs 1)", a.body)
	}
}

// TestFencedWrapsOtherRoutes shows a server of the same family (the
// simulated fleet) fences its own routes per host.
func TestFencedWrapsOtherRoutes(t *testing.T) {
	s := agent.Server{Fence: openFence(t, "", false)}
	calls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nodes/{node}/vms/{vm}/attach", s.Fenced("/nodes/{node}", func(w http.ResponseWriter, r *http.Request) {
		calls++
		agent.WriteJSON(w, http.StatusOK, struct{}{})
	}))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	srv := ts.URL
	wantAnswer(t, fenced(t, "POST", srv+"/nodes/a/vms/x/attach", 5, ""), 200, "")
	wantAnswer(t, fenced(t, "POST", srv+"/nodes/a/vms/x/attach", 4, ""), 409, agent.CodeFenced)
	// Each node has its own token.
	wantAnswer(t, fenced(t, "POST", srv+"/nodes/b/vms/x/attach", 4, ""), 200, "")
	if calls != 2 {
		t.Fatalf("handler called %d times; want 2", calls)
	}
	if got := s.Fence.Token("a"); got != 5 {
		t.Fatalf("node a's token is %d; want 5", got)
	}
}

var _ fpga.Host = (*slowHost)(nil)
