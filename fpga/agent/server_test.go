package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
)

// answer is one API answer: its status, its headers, and the error body
// when it is one.
type answer struct {
	status int
	header http.Header
	err    *agent.Error
	body   []byte
}

// call sends one request and reads the answer, which must be JSON.
func call(t *testing.T, method, url, contentType string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return send(t, req)
}

// send sends a request and reads the answer, which must be JSON.
func send(t *testing.T, req *http.Request) answer {
	t.Helper()
	method, url := req.Method, req.URL
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q; want application/json", method, url, ct)
	}
	if resp.StatusCode >= 400 {
		var eb agent.ErrorBody
		if err := json.Unmarshal(a.body, &eb); err != nil || eb.Error == nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("%s %s: %d %s; want a JSON error with a code and a message", method, url, resp.StatusCode, a.body)
		}
		a.err = eb.Error
	}
	return a
}

// wantAnswer checks an answer's status and, for an error, its code.
func wantAnswer(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d (%s); want %d", a.status, a.body, status)
	}
	if code != "" && (a.err == nil || a.err.Code != code) {
		t.Fatalf("answer %s; want code %s", a.body, code)
	}
}

func serve(t *testing.T, h fpga.Host, s agent.Server) string {
	t.Helper()
	srv := httptest.NewServer(agent.NewHandler(h, s))
	t.Cleanup(srv.Close)
	return srv.URL
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func uploadURL(base, pci, digest string) string {
	return base + "/v1/cards/" + pci + "/program?sha256=" + digest
}

func TestSetVFsChecksTotalVFs(t *testing.T) {
	tests := []struct {
		name   string
		pci    string
		body   string
		status int
		code   string
		numVFs int
	}{
		{"within sriov_totalvfs", cardPCI, `{"count": 1}`, 200, "", 1},
		{"over sriov_totalvfs", cardPCI, `{"count": 2}`, 400, agent.CodeBadRequest, 0},
		{"far over sriov_totalvfs", cardPCI, `{"count": 2147483647}`, 400, agent.CodeBadRequest, 0},
		{"negative", cardPCI, `{"count": -1}`, 400, agent.CodeBadRequest, 0},
		{"count is not an integer", cardPCI, `{"count": 1.5}`, 400, agent.CodeBadRequest, 0},
		{"count overflows", cardPCI, `{"count": 1e40}`, 400, agent.CodeBadRequest, 0},
		{"no such card", "0000:af:00.0", `{"count": 1}`, 404, agent.CodeNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := agenttest.NewMemHost()
			base := serve(t, h, agent.Server{})
			a := call(t, "PUT", base+"/v1/cards/"+tt.pci+"/vfs", "application/json", strings.NewReader(tt.body))
			wantAnswer(t, a, tt.status, tt.code)
			if got := h.Device().NumVFs; got != tt.numVFs {
				t.Fatalf("NumVFs = %d; want %d", got, tt.numVFs)
			}
		})
	}
}

func TestProgramRefusesBadRequests(t *testing.T) {
	image, bs := agenttest.Image(t)
	notGBS := []byte("not a bitstream at all")
	tests := []struct {
		name, path, contentType string
		body                    []byte
		status                  int
		code                    string
	}{
		{"valid upload", "?sha256=" + bs.SHA256, "application/octet-stream", image, 200, ""},
		{"valid upload, force", "?force=true&sha256=" + bs.SHA256, "application/octet-stream", image, 200, ""},
		{"image is not a GBS", "?sha256=" + sha(notGBS), "application/octet-stream", notGBS, 400, agent.CodeBadRequest},
		{"empty image", "?sha256=" + sha(nil), "application/octet-stream", nil, 400, agent.CodeBadRequest},
		{"wrong digest", "?sha256=" + sha(notGBS), "application/octet-stream", image, 422, agent.CodeDigestMismatch},
		{"digest in upper case", "?sha256=" + strings.ToUpper(bs.SHA256), "application/octet-stream", image, 400, agent.CodeBadRequest},
		{"force is not a bool", "?force=yes&sha256=" + bs.SHA256, "application/octet-stream", image, 400, agent.CodeBadRequest},
		{"JSON without a URL", "", "application/json", []byte(`{"sha256":"` + bs.SHA256 + `"}`), 400, agent.CodeBadRequest},
		{"JSON with a file URL", "", "application/json", []byte(`{"sha256":"` + bs.SHA256 + `","url":"file:///etc/passwd"}`), 400, agent.CodeBadRequest},
		{"JSON with a bad URL", "", "application/json", []byte(`{"sha256":"` + bs.SHA256 + `","url":"http://[::1"}`), 400, agent.CodeBadRequest},
		{"JSON that is not JSON", "", "application/json", []byte(`{"sha256":`), 400, agent.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := agenttest.NewMemHost()
			base := serve(t, h, agent.Server{})
			a := call(t, "POST", base+"/v1/cards/"+cardPCI+"/program"+tt.path, tt.contentType, bytes.NewReader(tt.body))
			wantAnswer(t, a, tt.status, tt.code)
			if want := map[bool]int{true: 1, false: 0}[tt.status == 200]; h.Programs() != want {
				t.Fatalf("host programmed %d times; want %d", h.Programs(), want)
			}
		})
	}
}

// imageServer serves an image at /nlb.gbs, redirects /to?url=U to U, and
// counts the requests it gets.
type imageServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newImageServer(t *testing.T, image []byte) *imageServer {
	t.Helper()
	s := &imageServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if to := r.URL.Query().Get("url"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		w.Write(image)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *imageServer) hostPort() string { return strings.TrimPrefix(s.URL, "http://") }

// TestFetchOnlyFromAllowedHosts shows the agent fetches a URL only from
// hosts it was told to trust, redirects included: a request to any other
// host never leaves the agent.
func TestFetchOnlyFromAllowedHosts(t *testing.T) {
	image, bs := agenttest.Image(t)
	trusted, other := newImageServer(t, image), newImageServer(t, image)
	tests := []struct {
		name    string
		allow   []string
		url     string
		status  int
		code    string
		message string
	}{
		{"no allow list refuses every URL", nil, trusted.URL + "/nlb.gbs", 403, agent.CodeForbidden, "--fetch-allow"},
		{"allowed host and port", []string{trusted.hostPort()}, trusted.URL + "/nlb.gbs", 200, "", ""},
		{"host allowed on another port", []string{"127.0.0.1:1"}, trusted.URL + "/nlb.gbs", 403, agent.CodeForbidden, "not in --fetch-allow"},
		{"a host alone allows the default port only", []string{"127.0.0.1"}, trusted.URL + "/nlb.gbs", 403, agent.CodeForbidden, "not in --fetch-allow"},
		{"another host", []string{trusted.hostPort()}, other.URL + "/nlb.gbs", 403, agent.CodeForbidden, "not in --fetch-allow"},
		{"redirect to a host not allowed", []string{trusted.hostPort()}, trusted.URL + "/to?url=" + other.URL + "/nlb.gbs", 403, agent.CodeForbidden, "not in --fetch-allow"},
		{"redirect to an allowed host", []string{trusted.hostPort(), other.hostPort()}, trusted.URL + "/to?url=" + other.URL + "/nlb.gbs", 200, "", ""},
		{"allowed host, wrong digest", []string{trusted.hostPort()}, trusted.URL + "/nlb.gbs", 422, agent.CodeDigestMismatch, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trusted.hits.Store(0)
			other.hits.Store(0)
			h := agenttest.NewMemHost()
			base := serve(t, h, agent.Server{FetchAllow: tt.allow})
			digest := bs.SHA256
			if tt.code == agent.CodeDigestMismatch {
				digest = strings.Repeat("ab", 32)
			}
			body, _ := json.Marshal(agent.ProgramRequest{SHA256: digest, URL: tt.url})
			a := call(t, "POST", base+"/v1/cards/"+cardPCI+"/program", "application/json", bytes.NewReader(body))
			wantAnswer(t, a, tt.status, tt.code)
			if tt.message != "" && !strings.Contains(a.err.Message, tt.message) {
				t.Fatalf("message %q; want it to say %q", a.err.Message, tt.message)
			}
			if tt.status == 200 {
				if h.Programs() != 1 {
					t.Fatalf("host programmed %d times; want 1", h.Programs())
				}
				return
			}
			if h.Programs() != 0 {
				t.Fatal("host programmed a refused image")
			}
			allowed := false
			for _, e := range tt.allow {
				allowed = allowed || e == other.hostPort()
			}
			if n := other.hits.Load(); n != 0 && !allowed {
				t.Fatalf("a host not allowed got %d requests", n)
			}
		})
	}
}

func TestParseFetchAllow(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
		errs   []string
	}{
		{"host", []string{"images.example"}, []string{"images.example"}, nil},
		{"comma-separated and repeated", []string{"Images.Example:8443, cdn.example", "10.0.0.5:80"}, []string{"images.example:8443", "cdn.example", "10.0.0.5:80"}, nil},
		{"IPv6 in brackets", []string{"[::1]:8080"}, []string{"[::1]:8080"}, nil},
		{"scheme", []string{"https://images.example"}, nil, []string{`"https://images.example"`}},
		{"path", []string{"images.example/gbs"}, nil, []string{`"images.example/gbs"`}},
		{"user", []string{"me@images.example"}, nil, []string{`"me@images.example"`}},
		{"wildcard", []string{"*.example"}, nil, []string{`"*.example"`}},
		{"port zero", []string{"images.example:0"}, nil, []string{"want 1 to 65535"}},
		{"empty port", []string{"images.example:"}, nil, []string{`"images.example:"`}},
		{"every mistake at once", []string{"a.example/x,ok.example", "b.example:99999"}, nil, []string{`"a.example/x"`, `"b.example:99999"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := agent.ParseFetchAllow(tt.values)
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Fatalf("got %q; want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q; want an error", got)
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q does not name %s", err, e)
				}
			}
		})
	}
}

// blockingHost programs like MemHost, but holds each Program until
// released, and records how many ran at once.
type blockingHost struct {
	*agenttest.MemHost
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	in, max int
}

func newBlockingHost() *blockingHost {
	return &blockingHost{MemHost: agenttest.NewMemHost(), entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (h *blockingHost) Program(ctx context.Context, pci string, image []byte, opts fpga.ProgramOptions) error {
	h.mu.Lock()
	h.in++
	h.max = max(h.max, h.in)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.in--
		h.mu.Unlock()
	}()
	h.entered <- struct{}{}
	<-h.release
	return h.MemHost.Program(ctx, pci, image, opts)
}

func TestUploadsPastTheBoundAreAnsweredBusy(t *testing.T) {
	image, bs := agenttest.Image(t)
	h := newBlockingHost()
	base := serve(t, h, agent.Server{MaxUploads: 1})
	first := make(chan answer, 1)
	go func() {
		first <- call(t, "POST", uploadURL(base, cardPCI, bs.SHA256), "application/octet-stream", bytes.NewReader(image))
	}()
	<-h.entered // the first upload holds the one slot until its program ends

	a := call(t, "POST", uploadURL(base, cardPCI, bs.SHA256), "application/octet-stream", bytes.NewReader(image))
	wantAnswer(t, a, 503, agent.CodeUnavailable)
	if ra := a.header.Get("Retry-After"); ra == "" {
		t.Fatal("busy answer without Retry-After")
	}
	close(h.release)
	wantAnswer(t, <-first, 200, "")
	wantAnswer(t, call(t, "POST", uploadURL(base, cardPCI, bs.SHA256), "application/octet-stream", bytes.NewReader(image)), 200, "")
}

// TestImagesInMemoryAreBounded shows at most MaxImagesInMemory verified
// images reach the host at once, while more requests are in flight.
func TestImagesInMemoryAreBounded(t *testing.T) {
	image, bs := agenttest.Image(t)
	h := newBlockingHost()
	base := serve(t, h, agent.Server{MaxUploads: 3, MaxImagesInMemory: 1})
	answers := make(chan answer, 3)
	for range 3 {
		go func() {
			answers <- call(t, "POST", uploadURL(base, cardPCI, bs.SHA256), "application/octet-stream", bytes.NewReader(image))
		}()
	}
	<-h.entered
	// Give the other two time to pile up behind the first; were they not
	// bounded, they would reach the host meanwhile.
	select {
	case <-h.entered:
		t.Fatal("a second image reached the host while the first was programmed")
	case <-time.After(500 * time.Millisecond):
	}
	close(h.release)
	for range 3 {
		wantAnswer(t, <-answers, 200, "")
	}
	if h.max != 1 || h.Programs() != 3 {
		t.Fatalf("%d programs, at most %d at once; want 3, one at a time", h.Programs(), h.max)
	}
}

// TestStalledUploadsStayOnDisk sends large chunked uploads and stalls
// them just before their end: what the agent received is on disk, not in
// its heap.
func TestStalledUploadsStayOnDisk(t *testing.T) {
	const (
		uploads = 8
		size    = 24 << 20
		chunk   = 64 << 10
		// Held in memory, the uploads would take 8 x 24 MiB; streamed,
		// a few buffers each.
		maxHeap = 40 << 20
	)
	base := serve(t, agenttest.NewMemHost(), agent.Server{MaxUploads: uploads, TempDir: t.TempDir()})
	var (
		pipes   []*io.PipeWriter
		answers = make(chan answer, uploads)
		buf     = bytes.Repeat([]byte{0x5a}, chunk)
	)
	for range uploads {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		go func() {
			answers <- call(t, "POST", uploadURL(base, cardPCI, strings.Repeat("0", 64)), "application/octet-stream", pr)
		}()
		for sent := 0; sent < size-chunk; sent += chunk {
			if _, err := pw.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	t.Logf("heap with %d uploads of %d MiB stalled: %.1f MiB", uploads, size>>20, float64(m.HeapAlloc)/(1<<20))
	if m.HeapAlloc > maxHeap {
		t.Errorf("heap %d MiB with the uploads stalled; want under %d MiB", m.HeapAlloc>>20, maxHeap>>20)
	}
	for _, pw := range pipes {
		pw.Write(buf)
		pw.Close()
	}
	for range uploads {
		wantAnswer(t, <-answers, 422, agent.CodeDigestMismatch)
	}
}

// TestBoundsArePerNode serves two nodes from one Server, as the simulated
// fleet does: one node's upload in flight leaves the other's slot free.
func TestBoundsArePerNode(t *testing.T) {
	image, bs := agenttest.Image(t)
	hosts := map[string]*blockingHost{"a": newBlockingHost(), "b": newBlockingHost()}
	s := &agent.Server{MaxUploads: 1, Host: func(r *http.Request) (fpga.Host, error) {
		h, ok := hosts[r.PathValue("node")]
		if !ok {
			return nil, agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no node %s", r.PathValue("node"))
		}
		return h, nil
	}}
	mux := http.NewServeMux()
	s.Register(mux, "/nodes/{node}")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	upload := func(node string) answer {
		return call(t, "POST", uploadURL(srv.URL+"/nodes/"+node, cardPCI, bs.SHA256), "application/octet-stream", bytes.NewReader(image))
	}

	first := make(chan answer, 1)
	go func() { first <- upload("a") }()
	<-hosts["a"].entered
	wantAnswer(t, upload("a"), 503, agent.CodeUnavailable)
	other := make(chan answer, 1)
	go func() { other <- upload("b") }()
	<-hosts["b"].entered // node b got its own slot
	close(hosts["b"].release)
	wantAnswer(t, <-other, 200, "")
	close(hosts["a"].release)
	wantAnswer(t, <-first, 200, "")
	wantAnswer(t, upload("c"), 404, agent.CodeNotFound)
}

// The agent sets the user clocks an image asks for unless it is told to
// leave them, and says so to the host.
func TestSkipUserClocks(t *testing.T) {
	image, bs := agenttest.Image(t)
	for _, skip := range []bool{false, true} {
		h := agenttest.NewMemHost()
		url := serve(t, h, agent.Server{SkipUserClocks: skip})
		wantAnswer(t, call(t, "POST", uploadURL(url, agenttest.CardPCI, bs.SHA256), "application/octet-stream", bytes.NewReader(image)), 200, "")
		if got := h.LastOptions().SkipUserClock; got != skip {
			t.Errorf("SkipUserClocks %v: the host was asked with SkipUserClock %v", skip, got)
		}
	}
}
