package githosttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/spec/source/gittest"
)

// PushHead commits files (paths relative to the repository) on branch
// of the remote, from main, and force-pushes it, as a contributor pushing
// to a pull request does, and returns the commit: the pull request's
// head.
func PushHead(t testing.TB, r *gittest.Remote, branch string, files map[string][]byte) string {
	t.Helper()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", r.Work, "-c", "user.name=Contributor", "-c", "user.email=c@example.com"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return strings.TrimSpace(out.String())
	}
	git("checkout", "-q", "-B", branch, "main")
	for name, data := range files {
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", name)
	}
	git("commit", "-q", "-m", "change on "+branch)
	git("push", "-q", "--force", "origin", branch)
	head := git("rev-parse", "HEAD")
	git("checkout", "-q", "main")
	return head
}
