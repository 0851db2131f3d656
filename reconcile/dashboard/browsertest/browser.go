// Package browsertest drives a real headless browser (Debian's chromium)
// for the dashboard's tests and benchmarks: it loads a page, waits until
// the page's script says it is ready, evaluates expressions in it, and
// takes screenshots. It speaks the Chrome DevTools Protocol over the pipe
// chromium opens with --remote-debugging-pipe (JSON messages ending in a
// NUL byte on file descriptors 3 and 4): no network port, no WebSocket,
// no npm.
package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Flags chromium runs with: headless, sandboxless (tests run as root in
// containers), and quiet: no GPU, no calls home, a fresh profile.
var Flags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--no-first-run",
	"--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
}

// Browser is one chromium process with one page.
type Browser struct {
	t       testing.TB
	cmd     *exec.Cmd
	in      io.WriteCloser // commands, fd 3 of chromium
	session string
	stderr  bytes.Buffer

	mu      sync.Mutex
	next    int
	waiting map[int]chan message
	events  chan message
	done    chan struct{}
}

type message struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Start starts chromium with a fresh profile under the test's temp dir
// and opens a page of width x height CSS pixels. The test fails when
// chromium is not installed: it is part of what the tests need
// (.ci/run installs it).
func Start(t testing.TB, width, height int) *Browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the dashboard's browser tests (apt-get install chromium): %v", err)
	}
	profile := filepath.Join(t.TempDir(), "profile")
	args := append(append([]string{}, Flags...), "--remote-debugging-pipe", "--user-data-dir="+profile,
		fmt.Sprintf("--window-size=%d,%d", width, height), "about:blank")
	cmdIn, chromeIn, err := os.Pipe() // chromium reads commands on fd 3
	if err != nil {
		t.Fatal(err)
	}
	chromeOut, cmdOut, err := os.Pipe() // and writes answers on fd 4
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{t: t, in: chromeIn, waiting: map[int]chan message{}, events: make(chan message, 1024), done: make(chan struct{})}
	b.cmd = exec.Command(bin, args...)
	b.cmd.ExtraFiles = []*os.File{cmdIn, cmdOut}
	b.cmd.Stderr = &b.stderr
	b.cmd.Env = append(os.Environ(), "HOME="+profile)
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	cmdIn.Close()
	cmdOut.Close()
	go b.read(chromeOut)
	t.Cleanup(b.Close)

	var target struct {
		TargetID string `json:"targetId"`
	}
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	b.call(b.session, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return b
}

// read hands each message from chromium to its caller, or to the events.
func (b *Browser) read(r io.ReadCloser) {
	defer close(b.done)
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m message
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.waiting[m.ID]
			delete(b.waiting, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		select {
		case b.events <- m:
		default: // nobody waits for it
		}
	}
}

// timeout bounds one call; the slowest is a large page's screenshot.
const timeout = 60 * time.Second

// call sends a command and decodes its result into out.
func (b *Browser) call(session, method string, params, out any) {
	b.t.Helper()
	if err := b.Call(session, method, params, out); err != nil {
		b.t.Fatal(err)
	}
}

// Call sends a DevTools command to the page's session ("" for the
// browser) and decodes its result into out, which may be nil.
func (b *Browser) Call(session, method string, params, out any) error {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan message, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if _, err := b.in.Write(append(data, 0)); err != nil {
		return fmt.Errorf("chromium: %s: %w\n%s", method, err, b.stderr.String())
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("chromium: %s: %s", method, m.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-b.done:
		return fmt.Errorf("chromium: %s: the browser went away\n%s", method, b.stderr.String())
	case <-time.After(timeout):
		return fmt.Errorf("chromium: %s: no answer in %s", method, timeout)
	}
}

// Load navigates to url and waits until the page's script marks the
// document ready (data-ready on <html>), and returns how long that took
// from the navigation's start, as the page's own clock measures it.
func (b *Browser) Load(ctx context.Context, url string) time.Duration {
	b.t.Helper()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, &nav)
	if nav.ErrorText != "" {
		b.t.Fatalf("chromium: load %s: %s", url, nav.ErrorText)
	}
	for {
		var ready bool
		if err := b.Eval(`document.readyState === "complete" && document.documentElement.getAttribute("data-ready") === "1"`, &ready); err == nil && ready {
			break
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("chromium: %s did not get ready: %v", url, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	var ms float64
	b.MustEval(`(function () { var m = performance.getEntriesByName("fpgaops-ready"); return m.length ? m[0].startTime : -1; })()`, &ms)
	if ms < 0 {
		b.t.Fatalf("chromium: %s has no fpgaops-ready mark", url)
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// Eval evaluates a JavaScript expression in the page and decodes its
// value into out.
func (b *Browser) Eval(expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.Call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res); err != nil {
		return err
	}
	if res.Exception != nil {
		return fmt.Errorf("chromium: %s: %s", expr, res.Exception.Text)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// MustEval is Eval that fails the test.
func (b *Browser) MustEval(expr string, out any) {
	b.t.Helper()
	if err := b.Eval(expr, out); err != nil {
		b.t.Fatal(err)
	}
}

// Text is the text of the page's document as the browser built it, its
// runs of white space made one space: what the page says, the parts laid
// out only when scrolled to included.
func (b *Browser) Text() string {
	b.t.Helper()
	var s string
	b.MustEval(`document.body.textContent.replace(/\s+/g, " ")`, &s)
	return s
}

// Screenshot saves the page as a PNG: the whole page, or with full
// false what the window shows.
func (b *Browser) Screenshot(path string, full bool) {
	b.t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": full}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Close ends chromium.
func (b *Browser) Close() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	// Browser.close ends it cleanly; a kill makes sure.
	done := make(chan error, 1)
	go func() { done <- b.Call("", "Browser.close", nil, nil) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	b.in.Close()
	wait := make(chan error, 1)
	go func() { wait <- b.cmd.Wait() }()
	select {
	case <-wait:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-wait
	}
	b.cmd = nil
}
