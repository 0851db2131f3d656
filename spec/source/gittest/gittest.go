// Package gittest serves real git remotes on loopback for tests: a bare
// repository on disk reached over file://, through git daemon, or through
// git http-backend behind net/http/cgi, plus a work repository that commits
// (signed or not) and pushes to it, and OpenPGP keys made on the spot.
package gittest

import (
	"bytes"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Remote is a bare repository under Root (served as "<Name>.git") and a
// work repository that pushes its main branch to it.
type Remote struct {
	t    testing.TB
	Root string
	Name string
	Work string
	repo *git.Repository
	env  []string
}

// NewRemote makes an empty bare repository and its work repository.
func NewRemote(t testing.TB, name string) *Remote {
	t.Helper()
	base := t.TempDir()
	r := &Remote{t: t, Root: filepath.Join(base, "srv"), Name: name, Work: filepath.Join(base, "work")}
	home := filepath.Join(base, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	// An empty HOME and no system config keep the machine's git settings
	// out of the test.
	r.env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	r.git("init", "--quiet", "--bare", "--initial-branch=main", r.BarePath())
	repo, err := git.PlainInitWithOptions(r.Work, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.repo = repo
	r.git("-C", r.Work, "remote", "add", "origin", r.BarePath())
	return r
}

// BarePath is the bare repository's directory.
func (r *Remote) BarePath() string { return filepath.Join(r.Root, r.Name+".git") }

// FileURL is the remote's file:// URL.
func (r *Remote) FileURL() string { return "file://" + r.BarePath() }

func (r *Remote) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = r.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// Commit writes files (a nil value deletes the file) into the work tree,
// commits them, signed when signer is set, pushes main, and returns the
// commit hash.
func (r *Remote) Commit(msg string, files map[string][]byte, signer *openpgp.Entity) string {
	r.t.Helper()
	h := r.commit(msg, files, signer)
	r.git("-C", r.Work, "push", "--quiet", "origin", "main")
	return h
}

func (r *Remote) commit(msg string, files map[string][]byte, signer *openpgp.Entity) string {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if data == nil {
			if _, err := wt.Remove(name); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	sig := &object.Signature{Name: "Fleet Admin", Email: "admin@example.com", When: time.Now()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, SignKey: signer, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// Rewrite replaces the tip of main by a new commit on its parent and
// force-pushes it, as a rebase or an amend would. It returns the new hash.
func (r *Remote) Rewrite(msg string, files map[string][]byte) string {
	r.t.Helper()
	head, err := r.repo.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := r.repo.CommitObject(head.Hash())
	if err != nil {
		r.t.Fatal(err)
	}
	if c.NumParents() == 0 {
		r.t.Fatal("gittest: cannot rewrite the root commit")
	}
	wt, _ := r.repo.Worktree()
	if err := wt.Reset(&git.ResetOptions{Commit: c.ParentHashes[0], Mode: git.HardReset}); err != nil {
		r.t.Fatal(err)
	}
	h := r.commit(msg, files, nil)
	r.git("-C", r.Work, "push", "--quiet", "--force", "origin", "main")
	return h
}

// Configure sets a git config value in the bare repository, as a server
// operator would (uploadpack.allowReachableSHA1InWant, say).
func (r *Remote) Configure(key, value string) {
	r.t.Helper()
	r.git("-C", r.BarePath(), "config", key, value)
}

// Tag makes an annotated tag on the commit and pushes it.
func (r *Remote) Tag(name, commit string) {
	r.t.Helper()
	sig := &object.Signature{Name: "Fleet Admin", Email: "admin@example.com", When: time.Now()}
	if _, err := r.repo.CreateTag(name, plumbing.NewHash(commit), &git.CreateTagOptions{Tagger: sig, Message: "release " + name}); err != nil {
		r.t.Fatal(err)
	}
	r.git("-C", r.Work, "push", "--quiet", "origin", "refs/tags/"+name)
}

// Daemon is a running git daemon.
type Daemon struct {
	// URL is the base URL; a repository is URL + name + ".git".
	URL string
	cmd *exec.Cmd
}

// StartDaemon runs git daemon on a free loopback port, exporting every
// repository under root, until the test ends.
func StartDaemon(t testing.TB, root string) *Daemon {
	t.Helper()
	var lastErr error
	for range 5 {
		port := freePort(t)
		cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all",
			"--base-path="+root, "--listen=127.0.0.1", "--port="+strconv.Itoa(port), root)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		exited, out, ok := startListening(t, "git daemon", cmd, addr)
		if ok {
			d := &Daemon{URL: "git://" + addr + "/", cmd: cmd}
			t.Cleanup(func() { d.Stop(); <-exited })
			return d
		}
		lastErr = &daemonError{out}
	}
	t.Fatalf("git daemon did not start: %v", lastErr)
	return nil
}

type daemonError struct{ out string }

func (e *daemonError) Error() string { return strings.TrimSpace(e.out) }

// Stop ends the daemon early, to make the remote unreachable.
func (d *Daemon) Stop() { killGroup(d.cmd) }

// startListening starts a server in its own process group, so that
// killGroup also ends its per-connection children, which would otherwise
// keep serving, and waits until it listens on addr. When it exits or does
// not listen, it is killed and ok is false; out is then what it wrote.
func startListening(t testing.TB, name string, cmd *exec.Cmd, addr string) (exited <-chan struct{}, out string, ok bool) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	if waitListening(addr, done) {
		return done, "", true
	}
	killGroup(cmd)
	<-done
	return done, buf.String(), false
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

func waitListening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartHTTPBackend serves every repository under root through git
// http-backend (smart HTTP). When user is set, requests need that HTTP
// basic auth user and password. It returns the base URL.
func StartHTTPBackend(t testing.TB, root, user, password string) string {
	t.Helper()
	return startHTTPBackend(t, root, func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return user == "" || ok && u == user && p == password
	})
}

// StartHTTPBackendToken is StartHTTPBackend behind a bearer token.
func StartHTTPBackendToken(t testing.TB, root, token string) string {
	t.Helper()
	return startHTTPBackend(t, root, func(r *http.Request) bool {
		return r.Header.Get("Authorization") == "Bearer "+token
	})
}

func startHTTPBackend(t testing.TB, root string, allow func(*http.Request) bool) string {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"},
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// NewKey makes an OpenPGP key for signing commits.
func NewKey(t testing.TB, name string) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", strings.ToLower(strings.ReplaceAll(name, " ", "."))+"@example.com",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Keyring returns the armored public keys of the entities.
func Keyring(t testing.TB, keys ...*openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := k.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Transport is one way of serving a remote to a fetcher, with the means to
// make it unreachable afterwards.
type Transport struct {
	Name string
	// Serve returns the remote's URL and a function that cuts it off.
	Serve func(t testing.TB, r *Remote) (url string, cut func())
}

// Transports lists the real remotes tests run against: file://, git
// daemon and git http-backend.
func Transports() []Transport {
	gone := func(t testing.TB, r *Remote) func() {
		return func() {
			if err := os.Rename(r.BarePath(), r.BarePath()+".gone"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []Transport{
		{"file", func(t testing.TB, r *Remote) (string, func()) {
			return r.FileURL(), gone(t, r)
		}},
		{"git-daemon", func(t testing.TB, r *Remote) (string, func()) {
			d := StartDaemon(t, r.Root)
			return d.URL + r.Name + ".git", d.Stop
		}},
		{"http-backend", func(t testing.TB, r *Remote) (string, func()) {
			return StartHTTPBackend(t, r.Root, "", "") + r.Name + ".git", gone(t, r)
		}},
	}
}
