package source_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
	"golang.org/x/crypto/ssh"
)

func newSource(t *testing.T, cfg source.Config) *source.Source {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	s, err := source.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fetch(t *testing.T, s *source.Source) source.Revision {
	t.Helper()
	rev, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func files(kv ...string) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = []byte(kv[i+1])
	}
	return m
}

// TestTransports runs the same story against each kind of real remote: a
// first fetch, a new commit, a force-push, then the remote going away.
func TestTransports(t *testing.T) {
	t.Parallel()
	for _, tt := range gittest.Transports() {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			r := gittest.NewRemote(t, "fleet")
			c1 := r.Commit("first", files("fleet/nodes.yaml", "v1", "README", "x"), nil)
			url, cut := tt.Serve(t, r)
			cache := t.TempDir()
			s := newSource(t, source.Config{URL: url, Ref: source.Ref{Kind: source.RefBranch, Name: "main"}, Path: "fleet", CacheDir: cache})

			rev1 := fetch(t, s)
			if rev1.Commit != c1 || rev1.Ref != "refs/heads/main" || rev1.Subject != "first" {
				t.Fatalf("first fetch: got %+v, want commit %s", rev1, c1)
			}
			if got := readFile(t, rev1.Dir, "nodes.yaml"); got != "v1" {
				t.Fatalf("nodes.yaml = %q, want v1", got)
			}
			if _, err := os.Stat(filepath.Join(rev1.Dir, "README")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a file outside --path was written out: %v", err)
			}

			c2 := r.Commit("second", files("fleet/nodes.yaml", "v2"), nil)
			rev2 := fetch(t, s)
			// Depth 1: the cache holds the tip only and knows it is shallow.
			if shallow, _ := filepath.Glob(filepath.Join(cache, "repo-*.git", "shallow")); len(shallow) != 1 {
				t.Fatalf("cache is not a shallow clone: %v", shallow)
			}
			if rev2.Commit != c2 || readFile(t, rev2.Dir, "nodes.yaml") != "v2" {
				t.Fatalf("new commit not picked up: got %s, want %s", rev2.Commit, c2)
			}
			if readFile(t, rev1.Dir, "nodes.yaml") != "v1" {
				t.Fatal("fetching a new revision changed the previous one's directory")
			}

			c3 := r.Rewrite("second, rewritten", files("fleet/nodes.yaml", "v3"))
			rev3 := fetch(t, s)
			if rev3.Commit != c3 || readFile(t, rev3.Dir, "nodes.yaml") != "v3" {
				t.Fatalf("force-push not handled: got %s, want %s", rev3.Commit, c3)
			}

			cut()
			_, err := s.Fetch(context.Background())
			if err == nil {
				t.Fatal("fetch from an unreachable remote succeeded")
			}
			if !strings.Contains(err.Error(), url) {
				t.Errorf("error does not name the remote %s: %v", url, err)
			}
			if readFile(t, rev3.Dir, "nodes.yaml") != "v3" {
				t.Fatal("a failed fetch changed the last good revision's directory")
			}
		})
	}
}

func TestRefs(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	c1 := r.Commit("one", files("v", "1.0.0"), nil)
	r.Tag("v1.0.0", c1)
	c2 := r.Commit("two", files("v", "1.2.0"), nil)
	r.Tag("v1.2.0", c2)
	c3 := r.Commit("three", files("v", "2.0.0"), nil)
	r.Tag("v2.0.0", c3)
	r.Tag("not-a-version", c3)
	c4 := r.Commit("four", files("v", "tip"), nil)

	tests := []struct {
		name     string
		ref      string
		want     string
		wantRef  string
		wantFile string
	}{
		{"default branch", "", c4, "HEAD", "tip"},
		{"branch", "main", c4, "refs/heads/main", "tip"},
		{"branch prefix", "branch:main", c4, "refs/heads/main", "tip"},
		{"annotated tag", "tag:v1.0.0", c1, "refs/tags/v1.0.0", "1.0.0"},
		{"semver caret", "semver:^1.0", c2, "refs/tags/v1.2.0", "1.2.0"},
		{"semver range", "semver:>=1.0.0 <3", c3, "refs/tags/v2.0.0", "2.0.0"},
		{"pinned commit", c2, c2, "", "1.2.0"},
		{"pinned commit prefix", "commit:" + c1, c1, "", "1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref, err := source.ParseRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			s := newSource(t, source.Config{URL: r.FileURL(), Ref: ref})
			rev := fetch(t, s)
			if rev.Commit != tt.want || rev.Ref != tt.wantRef {
				t.Fatalf("got commit %s ref %q, want %s %q", rev.Commit, rev.Ref, tt.want, tt.wantRef)
			}
			if got := readFile(t, rev.Dir, "v"); got != tt.wantFile {
				t.Fatalf("file v = %q, want %q", got, tt.wantFile)
			}
		})
	}

	t.Run("pinned commit fetched by hash", func(t *testing.T) {
		t.Parallel()
		// A server that serves commits by hash gets a shallow fetch of
		// just that commit.
		r := gittest.NewRemote(t, "pinned")
		c1 := r.Commit("one", files("v", "1"), nil)
		r.Commit("two", files("v", "2"), nil)
		r.Configure("uploadpack.allowReachableSHA1InWant", "true")
		d := gittest.StartDaemon(t, r.Root)
		cache := t.TempDir()
		s := newSource(t, source.Config{URL: d.URL + "pinned.git", Ref: source.Ref{Kind: source.RefCommit, Name: c1}, CacheDir: cache})
		if rev := fetch(t, s); rev.Commit != c1 || readFile(t, rev.Dir, "v") != "1" {
			t.Fatalf("got %+v", rev)
		}
		if shallow, _ := filepath.Glob(filepath.Join(cache, "repo-*.git", "shallow")); len(shallow) != 1 {
			t.Fatal("a commit the server serves by hash was not fetched shallow")
		}
	})
	t.Run("semver without a match", func(t *testing.T) {
		s := newSource(t, source.Config{URL: r.FileURL(), Ref: source.Ref{Kind: source.RefSemver, Name: ">=3"}})
		_, err := s.Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), `no tag satisfies semver range ">=3"`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("missing branch", func(t *testing.T) {
		s := newSource(t, source.Config{URL: r.FileURL(), Ref: source.Ref{Kind: source.RefBranch, Name: "nope"}})
		if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "refs/heads/nope") {
			t.Fatalf("got %v", err)
		}
	})
}

// A --path the fetched commit does not hold is the revision's problem, not
// the remote's: a rejection (ErrRejected, not a fetch failure to retry)
// that names the path and what the commit's top level holds.
func TestMissingPath(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	c := r.Commit("one", files("fleet/nodes.yaml", "x", "README.md", "y"), nil)
	tests := []struct{ name, path, want string }{
		{"typo", "fleets", `commit ` + c + `: revision rejected: path fleets: no such directory in this commit; check --path (the top level holds: README.md, fleet/)`},
		{"a file", "README.md", `path README.md: a file, not a directory; check --path`},
		{"below a file", "README.md/x", `path README.md/x: no such directory in this commit; check --path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSource(t, source.Config{URL: r.FileURL(), Path: tt.path})
			_, err := s.Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if !errors.Is(err, source.ErrRejected) {
				t.Errorf("%v is not an ErrRejected", err)
			}
			if errors.Is(err, source.ErrUntrusted) {
				t.Errorf("%v is an ErrUntrusted: a missing path is no signature problem", err)
			}
		})
	}
	// The right path fetches; an unreachable remote is no rejection.
	if rev := fetch(t, newSource(t, source.Config{URL: r.FileURL(), Path: "fleet"})); readFile(t, rev.Dir, "nodes.yaml") != "x" {
		t.Fatal("the fleet directory was not written out")
	}
	s := newSource(t, source.Config{URL: "file://" + filepath.Join(t.TempDir(), "gone.git"), Path: "fleet"})
	if _, err := s.Fetch(context.Background()); err == nil || errors.Is(err, source.ErrRejected) {
		t.Fatalf("missing remote: %v, want a fetch failure that is not a rejection", err)
	}
}

// A bare remote whose HEAD names a branch that does not exist (its
// default branch was never pushed) gets a hint to pass --ref, with the
// branches it has.
func TestHeadWithoutBranch(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	r.Commit("one", files("v", "1"), nil)
	if err := os.WriteFile(filepath.Join(r.BarePath(), "HEAD"), []byte("ref: refs/heads/trunk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := newSource(t, source.Config{URL: r.FileURL()}).Fetch(context.Background())
	want := `couldn't find remote ref "HEAD": the remote's HEAD names no branch that exists; pass --ref with the branch to follow (the remote has: main)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	if rev := fetch(t, newSource(t, source.Config{URL: r.FileURL(), Ref: source.Ref{Kind: source.RefBranch, Name: "main"}})); readFile(t, rev.Dir, "v") != "1" {
		t.Fatal("--ref main did not fetch the branch")
	}
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	hash := strings.Repeat("ab", 20)
	tests := []struct {
		in      string
		want    source.Ref
		wantErr string
	}{
		{"", source.Ref{Kind: source.RefHead}, ""},
		{"HEAD", source.Ref{Kind: source.RefHead}, ""},
		{"main", source.Ref{Kind: source.RefBranch, Name: "main"}, ""},
		{"refs/heads/release/1", source.Ref{Kind: source.RefBranch, Name: "release/1"}, ""},
		{"refs/tags/v1", source.Ref{Kind: source.RefTag, Name: "v1"}, ""},
		{strings.ToUpper(hash), source.Ref{Kind: source.RefCommit, Name: hash}, ""},
		{"semver:~1.2", source.Ref{Kind: source.RefSemver, Name: "~1.2"}, ""},
		{"semver:not a range", source.Ref{}, "semver range"},
		{"commit:abc", source.Ref{}, "full 40-character commit hash"},
		{"branch:a..b", source.Ref{}, "not a valid branch name"},
		{"tag:x:y", source.Ref{}, "not a valid tag name"},
		{"tag:", source.Ref{}, "empty tag"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := source.ParseRef(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRef(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  source.Config
		want string
	}{
		{"no url", source.Config{CacheDir: "c"}, "no URL"},
		{"path escapes", source.Config{URL: "file:///r", Path: "../etc", CacheDir: "c"}, "leaves the repository"},
		{"absolute path", source.Config{URL: "file:///r", Path: "/etc", CacheDir: "c"}, "must be relative"},
		{"unsupported transport", source.Config{URL: "ftp://h/r", CacheDir: "c"}, `transport "ftp" not supported`},
		{"ssh without known_hosts", source.Config{URL: "ssh://git@h/r", CacheDir: "c", Auth: source.Auth{SSHKey: []byte("k")}}, "known_hosts"},
		{"token over git://", source.Config{URL: "git://h/r", CacheDir: "c", Auth: source.Auth{Token: "t"}}, "not used by git://"},
		{"bad keyring", source.Config{URL: "file:///r", CacheDir: "c", Keyring: "garbage"}, "keyring"},
		{"no cache", source.Config{URL: "file:///r"}, "no cache directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := source.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestHTTPBasicAuth(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	c := r.Commit("first", files("a", "1"), nil)
	url := gittest.StartHTTPBackend(t, r.Root, "fleet-bot", "s3cret-pw") + "fleet.git"

	s := newSource(t, source.Config{URL: url, Auth: source.Auth{Username: "fleet-bot", Password: "wrong-pw"}})
	_, err := s.Fetch(context.Background())
	if err == nil {
		t.Fatal("fetch with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("error shows the password: %v", err)
	}

	s = newSource(t, source.Config{URL: url, Auth: source.Auth{Username: "fleet-bot", Password: "s3cret-pw"}})
	if rev := fetch(t, s); rev.Commit != c {
		t.Fatalf("got %s, want %s", rev.Commit, c)
	}
	if got := s.String(); strings.Contains(got, "s3cret") {
		t.Fatalf("String shows the password: %s", got)
	}
}

func TestHTTPBearerToken(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	c := r.Commit("first", files("a", "1"), nil)
	url := gittest.StartHTTPBackendToken(t, r.Root, "tok-123") + "fleet.git"
	if _, err := newSource(t, source.Config{URL: url, Auth: source.Auth{Token: "tok-999"}}).Fetch(context.Background()); err == nil || strings.Contains(err.Error(), "tok-999") {
		t.Fatalf("wrong token: got %v", err)
	}
	if rev := fetch(t, newSource(t, source.Config{URL: url, Auth: source.Auth{Token: "tok-123"}})); rev.Commit != c {
		t.Fatalf("got %s, want %s", rev.Commit, c)
	}
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	trusted := gittest.NewKey(t, "Fleet Admin")
	stranger := gittest.NewKey(t, "Somebody Else")
	keyring := gittest.Keyring(t, trusted)

	tests := []struct {
		name    string
		signer  func() *openpgp.Entity
		wantErr string
	}{
		{"signed by a trusted key", func() *openpgp.Entity { return trusted }, ""},
		{"unsigned", func() *openpgp.Entity { return nil }, "commit is not signed"},
		{"signed by an untrusted key", func() *openpgp.Entity { return stranger }, "signature not made by a trusted key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := gittest.NewRemote(t, "fleet")
			c := r.Commit("change", files("a", "1"), tt.signer())
			s := newSource(t, source.Config{URL: r.FileURL(), Keyring: keyring})
			rev, err := s.Fetch(context.Background())
			if tt.wantErr != "" {
				if !errors.Is(err, source.ErrUntrusted) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), c) {
					t.Fatalf("got %v, want an error about commit %s containing %q", err, c, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rev.Commit != c || rev.Signer == "" {
				t.Fatalf("got %+v", rev)
			}
		})
	}

	t.Run("verification off", func(t *testing.T) {
		r := gittest.NewRemote(t, "fleet")
		c := r.Commit("change", files("a", "1"), nil)
		if rev := fetch(t, newSource(t, source.Config{URL: r.FileURL()})); rev.Commit != c || rev.Signer != "" {
			t.Fatalf("got %+v", rev)
		}
	})
}

func TestRetain(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	r.Commit("one", files("a", "1"), nil)
	s := newSource(t, source.Config{URL: r.FileURL()})
	rev1 := fetch(t, s)
	r.Commit("two", files("a", "2"), nil)
	rev2 := fetch(t, s)
	r.Commit("three", files("a", "3"), nil)
	rev3 := fetch(t, s)
	if err := s.Retain(rev1.Commit, rev3.Commit); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir  string
		want bool
	}{{rev1.Dir, true}, {rev2.Dir, false}, {rev3.Dir, true}} {
		_, err := os.Stat(c.dir)
		if got := err == nil; got != c.want {
			t.Errorf("%s kept = %v, want %v", c.dir, got, c.want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := source.Redact("https://bot:tok3n@git.example.com/fleet.git")
	if strings.Contains(got, "tok3n") || !strings.Contains(got, "bot") {
		t.Fatalf("Redact = %s", got)
	}
}

func TestSSH(t *testing.T) {
	t.Parallel()
	sshd := gittest.StartSSHD(t)
	r := gittest.NewRemote(t, "fleet")
	c := r.Commit("first", files("a", "1"), nil)
	url := sshd.URL(r.BarePath())

	s := newSource(t, source.Config{URL: url, Auth: source.Auth{SSHKey: sshd.ClientKey, SSHUser: sshd.User, KnownHostsFile: sshd.KnownHosts}})
	if rev := fetch(t, s); rev.Commit != c {
		t.Fatalf("got %s, want %s", rev.Commit, c)
	}

	t.Run("unknown host key", func(t *testing.T) {
		other, _ := gittest.NewSSHKey(t)
		kh := filepath.Join(t.TempDir(), "known_hosts")
		line := "[" + strings.Replace(sshd.Addr, ":", "]:", 1) + " " + string(ssh.MarshalAuthorizedKey(other))
		if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newSource(t, source.Config{URL: url, Auth: source.Auth{SSHKey: sshd.ClientKey, SSHUser: sshd.User, KnownHostsFile: kh}})
		if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "key mismatch") {
			t.Fatalf("got %v, want a host key mismatch", err)
		}
	})
	t.Run("key not authorised", func(t *testing.T) {
		_, stranger := gittest.NewSSHKey(t)
		s := newSource(t, source.Config{URL: url, Auth: source.Auth{SSHKey: stranger, SSHUser: sshd.User, KnownHostsFile: sshd.KnownHosts}})
		if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("got %v, want an authentication failure", err)
		}
	})
}

// The cache starts afresh when fetches have left too many pack files.
func TestCacheBounded(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	cache := t.TempDir()
	s := newSource(t, source.Config{URL: r.FileURL(), CacheDir: cache, MaxPacks: 2})
	for i := range 6 {
		c := r.Commit(fmt.Sprint("change ", i), files("a", fmt.Sprint(i)), nil)
		if rev := fetch(t, s); rev.Commit != c || readFile(t, rev.Dir, "a") != fmt.Sprint(i) {
			t.Fatalf("fetch %d: got %+v", i, rev)
		}
		packs, _ := filepath.Glob(filepath.Join(cache, "repo-*.git", "objects", "pack", "*.pack"))
		if len(packs) > 3 {
			t.Fatalf("after fetch %d the cache holds %d packs", i, len(packs))
		}
	}
}

// An earlier revision is checked out from the cache after the
// written-out copies were dropped, without the remote; a commit never
// fetched is an error that names it.
func TestCheckoutOfAnEarlierRevision(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	first := r.Commit("one", files("nodes.yaml", "v1"), nil)
	s := newSource(t, source.Config{URL: r.FileURL()})
	fetch(t, s)
	r.Commit("two", files("nodes.yaml", "v2"), nil)
	if rev := fetch(t, s); readFile(t, rev.Dir, "nodes.yaml") != "v2" {
		t.Fatal("the second revision was not fetched")
	}
	if err := s.Retain(); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Checkout(first)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Commit != first || rev.Subject != "one" || readFile(t, rev.Dir, "nodes.yaml") != "v1" {
		t.Fatalf("checkout %+v", rev)
	}
	missing := strings.Repeat("ab", 20)
	if _, err := s.Checkout(missing); err == nil || !strings.Contains(err.Error(), "commit "+missing+" is not in the cache") {
		t.Fatalf("checkout of a commit never fetched: %v", err)
	}
}

// A revision is written from the one written before it: the files the
// commit left alone are the same files (links), those it changed, added
// or removed are written or left out, and the earlier revision keeps its
// own content.
func TestRevisionWrittenFromTheLastOne(t *testing.T) {
	t.Parallel()
	r := gittest.NewRemote(t, "fleet")
	r.Commit("one", map[string][]byte{
		"fleet/nodes/a.yaml": []byte("a1"), "fleet/nodes/b.yaml": []byte("b1"),
		"fleet/policy.yaml": []byte("p1"), "other/x.yaml": []byte("x1"),
	}, nil)
	s := newSource(t, source.Config{URL: r.FileURL(), Path: "fleet"})
	one := fetch(t, s)
	r.Commit("two", map[string][]byte{
		"fleet/nodes/b.yaml": []byte("b2"), "fleet/policy.yaml": nil,
		"fleet/bindings/c.yaml": []byte("c2"), "other/x.yaml": []byte("x2"),
	}, nil)
	two := fetch(t, s)

	var got []string
	err := filepath.WalkDir(two.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(two.Dir, p)
			got = append(got, filepath.ToSlash(rel)+"="+readFile(t, two.Dir, rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bindings/c.yaml=c2", "nodes/a.yaml=a1", "nodes/b.yaml=b2"}; !slices.Equal(got, want) {
		t.Errorf("the second revision holds %q, want %q", got, want)
	}
	same := func(name string) bool {
		a, errA := os.Stat(filepath.Join(one.Dir, name))
		b, errB := os.Stat(filepath.Join(two.Dir, name))
		return errA == nil && errB == nil && os.SameFile(a, b)
	}
	if !same("nodes/a.yaml") || same("nodes/b.yaml") {
		t.Errorf("nodes/a.yaml linked %v (want true), nodes/b.yaml linked %v (want false)", same("nodes/a.yaml"), same("nodes/b.yaml"))
	}
	if readFile(t, one.Dir, "nodes/b.yaml") != "b1" || readFile(t, one.Dir, "policy.yaml") != "p1" {
		t.Error("writing the second revision changed the first")
	}
}
