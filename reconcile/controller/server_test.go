package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"github.com/fpgaops/fpgaops/internal/testpki"
)

// serveHarness serves h's controller with NewServer on a loopback port
// and returns its base URL.
func serveHarness(t *testing.T, h *harness, opts ServeOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Addr = ln.Addr().String()
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, h.c) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return srv.Scheme() + "://" + opts.Addr
}

// rawHook starts a GitHub push delivery on a raw connection: its headers,
// for a body of length bytes, and the first len(partial) bytes of it.
func rawHook(t *testing.T, addr string, length int, partial []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /hooks/github HTTP/1.1\r\nHost: %s\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n",
		addr, strings.Repeat("0", 64), length)
	conn.Write(partial) // a refused delivery's connection may close meanwhile
	return conn
}

// TestStalledHookBodies stalls 100 webhook bodies just under the size
// limit: the controller's heap stays small, and every connection is closed
// within the body timeout.
func TestStalledHookBodies(t *testing.T) {
	const (
		conns   = 100
		maxHeap = 100 << 20
		timeout = 2 * time.Second
		// The machine may be busy; a connection left open would stay
		// open for good.
		slack = 6 * time.Second
	)
	h := newHarness(t, "", nil)
	base := serveHarness(t, h, ServeOptions{HookBodyTimeout: timeout, ReadTimeout: 2 * timeout})
	addr := strings.TrimPrefix(base, "http://")
	body := bytes.Repeat([]byte("x"), maxHookBody-2)

	var (
		sent, closed sync.WaitGroup
		mu           sync.Mutex
		slowest      time.Duration
		statuses     = map[string]int{}
	)
	for range conns {
		sent.Add(1)
		closed.Add(1)
		go func() {
			defer closed.Done()
			start := time.Now()
			conn := rawHook(t, addr, len(body)+1, body)
			defer conn.Close()
			conn.SetReadDeadline(start.Add(time.Minute)) // fail rather than hang
			sent.Done()
			// Read the answer, then wait for the server to close.
			line, _ := bufio.NewReader(conn).ReadString('\n')
			io.Copy(io.Discard, conn)
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			statuses[strings.TrimSpace(line)]++
		}()
	}
	sent.Wait()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	t.Logf("heap with %d webhook bodies of %d bytes stalled: %.1f MiB", conns, len(body)+1, float64(m.HeapAlloc)/(1<<20))
	if m.HeapAlloc > maxHeap {
		t.Errorf("heap %d MiB with %d bodies stalled; want under %d MiB", m.HeapAlloc>>20, conns, maxHeap>>20)
	}
	closed.Wait()
	t.Logf("answers: %v; slowest connection closed after %s", statuses, slowest)
	if slowest > timeout+slack {
		t.Errorf("a connection stayed open %s; want each closed within the body timeout %s", slowest, timeout)
	}
	if n := statuses["HTTP/1.1 408 Request Timeout"]; n == 0 || n > DefaultMaxHookBodies {
		t.Errorf("answers %v: want between 1 and %d bodies read until the timeout, the rest refused at once", statuses, DefaultMaxHookBodies)
	}
	if len(h.c.triggers) != 0 {
		t.Fatal("a stalled body triggered a run")
	}
}

// TestHookBodiesPastTheBoundAreRefused holds the one body slot with a
// stalled delivery: another is answered 503 with Retry-After, unread.
func TestHookBodiesPastTheBoundAreRefused(t *testing.T) {
	h := newHarness(t, "", nil)
	base := serveHarness(t, h, ServeOptions{MaxHookBodies: 1, HookBodyTimeout: time.Minute})
	stalled := rawHook(t, strings.TrimPrefix(base, "http://"), 100, []byte("{"))
	defer stalled.Close()

	body := `{"ref":"refs/heads/main"}`
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := postHook(t, base+"/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body), "X-GitHub-Event": "push"}, body)
		if resp.StatusCode == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			break
		}
		// The stalled delivery's handler had not started yet.
		<-h.c.triggers
		if time.Now().After(deadline) {
			t.Fatalf("webhook answered %s while another body held the only slot; want 503", resp.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(h.c.triggers) != 0 {
		t.Fatal("a refused webhook triggered a run")
	}
}

// TestTrickledHookBody sends a body a byte at a time: the server cuts it
// off at the body timeout with 408 and closes the connection.
func TestTrickledHookBody(t *testing.T) {
	const timeout = time.Second
	h := newHarness(t, "", nil)
	base := serveHarness(t, h, ServeOptions{HookBodyTimeout: timeout})
	start := time.Now()
	conn := rawHook(t, strings.TrimPrefix(base, "http://"), 1000, nil)
	defer conn.Close()
	conn.SetReadDeadline(start.Add(time.Minute)) // fail rather than hang
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.Contains(line, "408") {
		t.Fatalf("answer %q; want 408", line)
	}
	io.Copy(io.Discard, conn)
	if d := time.Since(start); d > timeout+6*time.Second {
		t.Fatalf("connection open for %s; want it closed at the body timeout %s", d, timeout)
	}
}

func postHook(t *testing.T, url string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// serverCert issues a server certificate for 127.0.0.1 and localhost,
// and returns its CA's pool and its files.
func serverCert(t *testing.T) (pool *x509.CertPool, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := testpki.NewCA("controller CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.IssueFiles(pkix.Name{CommonName: "controller"}, testpki.Server, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	return pool, certFile, keyFile
}

func TestServeTLS(t *testing.T) {
	pool, certFile, keyFile := serverCert(t)
	h := newHarness(t, "", nil)
	base := serveHarness(t, h, ServeOptions{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("serving %s; want https", base)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET /healthz over TLS: %s", resp.Status)
	}
	// Plain HTTP to the TLS port gets no API.
	plain, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS port")
		}
	}
}

func TestNewServerChecksWhereItServes(t *testing.T) {
	_, cert, key := serverCert(t)
	dir := t.TempDir()
	tests := []struct {
		name    string
		opts    ServeOptions
		scheme  string
		errs    []string
		warning string
	}{
		{"plain HTTP on IPv4 loopback", ServeOptions{Addr: "127.0.0.1:8080"}, "http", nil, ""},
		{"plain HTTP on IPv6 loopback", ServeOptions{Addr: "[::1]:8080"}, "http", nil, ""},
		{"plain HTTP on localhost", ServeOptions{Addr: "localhost:8080"}, "http", nil, ""},
		{"plain HTTP on every interface", ServeOptions{Addr: ":8080"}, "", []string{"--listen :8080: plain HTTP off loopback", "--tls-cert and --tls-key, or --allow-plain-http"}, ""},
		{"plain HTTP on a routable address", ServeOptions{Addr: "10.0.0.5:8080"}, "", []string{"plain HTTP off loopback"}, ""},
		{"plain HTTP allowed off loopback, loudly", ServeOptions{Addr: "0.0.0.0:8080", AllowPlainHTTP: true}, "http", nil, "serving plain HTTP off loopback"},
		{"TLS on every interface", ServeOptions{Addr: ":8443", TLSCertFile: cert, TLSKeyFile: key}, "https", nil, ""},
		{"certificate without key", ServeOptions{Addr: ":8443", TLSCertFile: cert}, "", []string{"--tls-cert and --tls-key go together"}, ""},
		{"missing certificate", ServeOptions{Addr: ":8443", TLSCertFile: filepath.Join(dir, "nope.pem"), TLSKeyFile: key}, "", []string{"--tls-cert, --tls-key: open", "nope.pem"}, ""},
		{"TLS and plain HTTP at once", ServeOptions{Addr: ":8443", TLSCertFile: cert, TLSKeyFile: key, AllowPlainHTTP: true}, "", []string{"exclude each other"}, ""},
	}
	h := newHarness(t, "", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			tt.opts.Log = slog.New(slog.NewTextHandler(&logs, nil))
			srv, err := NewServer(tt.opts)
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatalf("serving %s; want refused", srv.Scheme())
				}
				for _, e := range tt.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q does not say %q", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if srv.Scheme() != tt.scheme {
				t.Errorf("scheme %s; want %s", srv.Scheme(), tt.scheme)
			}
			// Serve on loopback: the address only decides what is allowed.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln, h.c) }()
			waitListening(t, ln.Addr().String())
			srv.Shutdown(context.Background())
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("serve: %v", err)
			}
			warned := strings.Contains(logs.String(), "level=WARN")
			if warned != (tt.warning != "") || !strings.Contains(logs.String(), tt.warning) {
				t.Errorf("logs %q; want a warning %q", logs.String(), tt.warning)
			}
		})
	}
}

// waitListening waits until addr accepts a connection.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s never listened", addr)
}

func TestShutdownBeforeServe(t *testing.T) {
	h := newHarness(t, "", nil)
	srv, err := NewServer(ServeOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln, h.c); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v; want http.ErrServerClosed at once", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the listener is still open")
	}
}
