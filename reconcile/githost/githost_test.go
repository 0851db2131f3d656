package githost_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/reconcile/githost"
	"github.com/fpgaops/fpgaops/reconcile/githost/githosttest"
)

const commit = "8d1f5c2e9b7a4e0c3f6a1d2b5c8e9f0a1b2c3d4e"

// fake is a fake host with a client on it.
type fake struct {
	host     githost.Host
	statuses func() []githosttest.Status
	comments func(n int) []githosttest.Comment
	open     func(n int)
	comment  func(n int, author, body string)
	badToken func() githost.Host
	token    string
}

func hosts(t *testing.T) map[string]fake {
	t.Helper()
	gh := githosttest.NewGitHub(t, "dc1/fleet")
	ghc, err := githost.NewGitHub(gh.URL(), gh.Repo, gh.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	gl := githosttest.NewGitLab(t, "dc1/fleet")
	glc, err := githost.NewGitLab(gl.URL(), gl.Project, gl.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]fake{
		"github": {host: ghc, statuses: func() []githosttest.Status { return gh.Statuses(commit) }, comments: gh.Comments,
			open: gh.OpenPull, comment: gh.AddComment, token: gh.Token,
			badToken: func() githost.Host { h, _ := githost.NewGitHub(gh.URL(), gh.Repo, "not-"+gh.Token, nil); return h }},
		"gitlab": {host: glc, statuses: func() []githosttest.Status { return gl.Statuses(commit) }, comments: gl.Notes,
			open: gl.OpenMergeRequest, comment: gl.AddNote, token: gl.Token,
			badToken: func() githost.Host { h, _ := githost.NewGitLab(gl.URL(), gl.Project, "not-"+gl.Token, nil); return h }},
	}
}

func TestCommitStatuses(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("held: no allow window is open; ", 10)
	for name, f := range hosts(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, s := range []githost.Status{
				{Commit: commit, State: githost.Pending, Context: "fpgaops", Description: "run 7 is applying it", TargetURL: "https://fpgaops.example/runs/7"},
				{Commit: commit, State: githost.Success, Context: "fpgaops", Description: long},
				{Commit: commit, State: githost.Failure, Context: "fpgaops/plan", Description: "rejected"},
				{Commit: commit, State: githost.Canceled, Context: "fpgaops", Description: "interrupted"},
			} {
				if err := f.host.SetStatus(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			got := f.statuses()
			states := map[string][]string{"github": {"pending", "success", "failure", "error"}, "gitlab": {"pending", "success", "failed", "canceled"}}[name]
			if len(got) != 4 {
				t.Fatalf("statuses: %+v", got)
			}
			for i, s := range got {
				if s.State != states[i] {
					t.Errorf("status %d: %s, want %s", i, s.State, states[i])
				}
			}
			if got[0].Context != "fpgaops" || got[0].TargetURL != "https://fpgaops.example/runs/7" || got[2].Context != "fpgaops/plan" {
				t.Errorf("statuses: %+v", got)
			}
			if d := []rune(got[1].Description); len(d) != githost.MaxDescription || d[len(d)-1] != '…' {
				t.Errorf("a long description is %d characters: %q", len(d), got[1].Description)
			}
		})
	}
}

// One comment per pull request, found among many and edited in place;
// a reviewer's comment that quotes the marker is left alone.
func TestCommentIsMadeOnceAndEdited(t *testing.T) {
	t.Parallel()
	const marker = "<!-- fpgaops plan -->"
	for name, f := range hosts(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f.open(7)
			f.comment(7, "reviewer", "why does this say "+marker+"?")
			for i := range 150 { // past the first page
				f.comment(7, "reviewer", fmt.Sprintf("comment %d", i))
			}
			for i, body := range []string{"plan of the first push", "plan of the second push", "plan of the third push"} {
				if err := f.host.Comment(ctx, 7, marker, marker+"\n"+body); err != nil {
					t.Fatalf("push %d: %v", i+1, err)
				}
				if i == 0 {
					f.comment(7, "reviewer", "more after it")
				}
			}
			var ours []githosttest.Comment
			for _, c := range f.comments(7) {
				if c.Author == "fpgaops-bot" {
					ours = append(ours, c)
				}
			}
			if len(ours) != 1 || ours[0].Body != marker+"\nplan of the third push" || ours[0].Edits != 2 {
				t.Fatalf("our comments: %+v", ours)
			}
			if f.comments(7)[0].Body != "why does this say "+marker+"?" {
				t.Error("the reviewer's comment was changed")
			}
		})
	}
}

func TestErrorsNameTheHostNotTheToken(t *testing.T) {
	t.Parallel()
	for name, f := range hosts(t) {
		t.Run(name, func(t *testing.T) {
			err := f.badToken().SetStatus(context.Background(), githost.Status{Commit: commit, State: githost.Success, Context: "fpgaops"})
			if err == nil || !strings.Contains(err.Error(), name+" dc1/fleet: POST ") || !strings.Contains(err.Error(), "401") {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(err.Error(), f.token) {
				t.Fatalf("the token is in the error: %v", err)
			}
			if err := f.host.Comment(context.Background(), 99, "m", "body"); err == nil || !strings.Contains(err.Error(), "404") {
				t.Fatalf("a comment on a pull request that does not exist: %v", err)
			}
		})
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"github repo", func() error { _, err := githost.NewGitHub("", "fleet", "t", nil); return err }, `github repository "fleet": want OWNER/NAME`},
		{"github token", func() error { _, err := githost.NewGitHub("", "dc1/fleet", "", nil); return err }, "github dc1/fleet: no token"},
		{"api scheme", func() error { _, err := githost.NewGitLab("ftp://gitlab.example", "dc1/fleet", "t", nil); return err }, "want an https:// URL"},
		{"gitlab project", func() error { _, err := githost.NewGitLab("", "/dc1/", "t", nil); return err }, `gitlab project "/dc1/"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
