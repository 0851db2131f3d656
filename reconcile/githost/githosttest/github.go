// Package githosttest holds local servers that follow GitHub's and
// GitLab's REST API references for what fpgaops uses of them: commit
// statuses, pull request (issue) comments, merge request notes. They check
// paths, methods, headers, the token and request bodies, answer with the
// references' status codes and shapes, and report every request that
// breaks the references as a test error, so that a client that drifts
// from them fails its tests.
package githosttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Status is a commit status as a fake host keeps it.
type Status struct {
	State, Context, Description, TargetURL string
}

// Comment is a comment or note as a fake host keeps it.
type Comment struct {
	ID     int64
	Author string
	Body   string
	Edits  int
}

// GitHub is a fake GitHub API for one repository.
type GitHub struct {
	t   testing.TB
	srv *httptest.Server

	// Repo is "owner/name"; Token the token it takes, whose user is
	// Login.
	Repo, Token, Login string

	mu       sync.Mutex
	statuses map[string][]Status // by commit
	comments map[int][]*Comment  // by pull request number
	pulls    map[int]bool        // pull requests that exist
	byID     map[int64]*Comment  // every comment
	seq      int64
	requests []string
}

// NewGitHub starts the fake; it stops when the test ends.
func NewGitHub(t testing.TB, repo string) *GitHub {
	g := &GitHub{t: t, Repo: repo, Token: "ghp_" + strings.Repeat("x1", 18), Login: "fpgaops-bot",
		statuses: map[string][]Status{}, comments: map[int][]*Comment{}, pulls: map[int]bool{}, byID: map[int64]*Comment{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

// URL is the API's base URL, as https://api.github.com is.
func (g *GitHub) URL() string { return g.srv.URL }

// OpenPull makes pull request n exist.
func (g *GitHub) OpenPull(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pulls[n] = true
}

// AddComment adds a comment by another user, as a reviewer would.
func (g *GitHub) AddComment(n int, author, body string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	c := &Comment{ID: g.seq, Author: author, Body: body}
	g.comments[n] = append(g.comments[n], c)
	g.byID[c.ID] = c
}

// Statuses are the statuses set on a commit, in order.
func (g *GitHub) Statuses(commit string) []Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Status(nil), g.statuses[commit]...)
}

// Comments are pull request n's comments, copied.
func (g *GitHub) Comments(n int) []Comment {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Comment
	for _, c := range g.comments[n] {
		out = append(out, *c)
	}
	return out
}

// Requests lists "METHOD path" of every request, in order.
func (g *GitHub) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}

var (
	ghStatusPath   = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/statuses/([0-9a-f]{40})$`)
	ghCommentsPath = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/issues/([0-9]+)/comments$`)
	ghCommentPath  = regexp.MustCompile(`^/repos/([^/]+/[^/]+)/issues/comments/([0-9]+)$`)
)

// ghError answers as GitHub does: {"message": ..., "documentation_url": ...}.
func ghError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

func (g *GitHub) violation(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.t.Errorf("github fake: request breaks the API reference: %s", msg)
	ghError(w, code, msg)
}

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, r.Method+" "+r.URL.Path)
	g.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+g.Token {
		ghError(w, http.StatusUnauthorized, "Bad credentials")
		return
	}
	if r.Header.Get("Accept") != "application/vnd.github+json" {
		g.violation(w, http.StatusUnsupportedMediaType, "Accept %q, want application/vnd.github+json", r.Header.Get("Accept"))
		return
	}
	if v := r.Header.Get("X-GitHub-Api-Version"); v != "2022-11-28" {
		g.violation(w, http.StatusBadRequest, "X-GitHub-Api-Version %q is not a supported version", v)
		return
	}
	if r.Header.Get("User-Agent") == "" {
		g.violation(w, http.StatusForbidden, "requests must have a User-Agent")
		return
	}
	switch p := r.URL.Path; {
	case r.Method == http.MethodPost && ghStatusPath.MatchString(p):
		m := ghStatusPath.FindStringSubmatch(p)
		g.createStatus(w, r, m[1], m[2])
	case r.Method == http.MethodGet && ghCommentsPath.MatchString(p):
		m := ghCommentsPath.FindStringSubmatch(p)
		g.listComments(w, r, m[1], atoi(m[2]))
	case r.Method == http.MethodPost && ghCommentsPath.MatchString(p):
		m := ghCommentsPath.FindStringSubmatch(p)
		g.createComment(w, r, m[1], atoi(m[2]))
	case r.Method == http.MethodPatch && ghCommentPath.MatchString(p):
		m := ghCommentPath.FindStringSubmatch(p)
		g.updateComment(w, r, m[1], int64(atoi(m[2])))
	default:
		g.violation(w, http.StatusNotFound, "%s %s is not an endpoint fpgaops uses", r.Method, p)
	}
}

// body decodes a JSON request body into v, strictly.
func body(w http.ResponseWriter, r *http.Request, v any, fail func(http.ResponseWriter, int, string, ...any)) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fail(w, http.StatusUnsupportedMediaType, "Content-Type %q, want application/json", ct)
		return false
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 2<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "body: %v", err)
		return false
	}
	return true
}

func (g *GitHub) createStatus(w http.ResponseWriter, r *http.Request, repo, sha string) {
	if repo != g.Repo {
		ghError(w, http.StatusNotFound, "Not Found")
		return
	}
	var in struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		Description string `json:"description"`
		Context     string `json:"context"`
	}
	if !body(w, r, &in, g.violation) {
		return
	}
	switch in.State {
	case "error", "failure", "pending", "success":
	default:
		g.violation(w, http.StatusUnprocessableEntity, "Validation Failed: state %q is not included in the list", in.State)
		return
	}
	if len([]rune(in.Description)) > 140 {
		g.violation(w, http.StatusUnprocessableEntity, "Validation Failed: description is too long (maximum is 140 characters)")
		return
	}
	if in.Context == "" {
		in.Context = "default"
	}
	g.mu.Lock()
	g.statuses[sha] = append(g.statuses[sha], Status{in.State, in.Context, in.Description, in.TargetURL})
	g.seq++
	id := g.seq
	g.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC3339)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Location", g.srv.URL+"/repos/"+repo+"/statuses/"+sha)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{
		"url": g.srv.URL + "/repos/" + repo + "/statuses/" + sha, "id": id, "node_id": fmt.Sprintf("SC_%d", id),
		"state": in.State, "description": in.Description, "target_url": in.TargetURL, "context": in.Context,
		"created_at": now, "updated_at": now, "creator": map[string]any{"login": g.Login, "id": 1, "type": "User"},
	})
}

func (g *GitHub) commentJSON(repo string, c *Comment) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	return map[string]any{
		"id": c.ID, "node_id": fmt.Sprintf("IC_%d", c.ID), "url": fmt.Sprintf("%s/repos/%s/issues/comments/%d", g.srv.URL, repo, c.ID),
		"html_url": fmt.Sprintf("https://github.com/%s/pull/0#issuecomment-%d", repo, c.ID), "body": c.Body,
		"user": map[string]any{"login": c.Author, "id": 1, "type": "User"}, "created_at": now, "updated_at": now,
		"author_association": "MEMBER",
	}
}

func (g *GitHub) pull(w http.ResponseWriter, repo string, n int) bool {
	g.mu.Lock()
	ok := repo == g.Repo && g.pulls[n]
	g.mu.Unlock()
	if !ok {
		ghError(w, http.StatusNotFound, "Not Found")
	}
	return ok
}

func (g *GitHub) listComments(w http.ResponseWriter, r *http.Request, repo string, n int) {
	if !g.pull(w, repo, n) {
		return
	}
	q := r.URL.Query()
	per, page := 30, 1
	if v := q.Get("per_page"); v != "" {
		per = atoi(v)
	}
	if v := q.Get("page"); v != "" {
		page = atoi(v)
	}
	if per < 1 || per > 100 || page < 1 {
		g.violation(w, http.StatusUnprocessableEntity, "per_page %d (1 to 100), page %d", per, page)
		return
	}
	g.mu.Lock()
	all := g.comments[n]
	from, to := min((page-1)*per, len(all)), min(page*per, len(all))
	out := []map[string]any{}
	for _, c := range all[from:to] {
		out = append(out, g.commentJSON(repo, c))
	}
	g.mu.Unlock()
	if to < len(all) {
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?per_page=%d&page=%d>; rel="next"`, g.srv.URL, r.URL.Path, per, page+1))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(out)
}

// maxCommentBody is GitHub's limit on a comment's body.
const maxCommentBody = 65536

func (g *GitHub) commentBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Body string `json:"body"`
	}
	if !body(w, r, &in, g.violation) {
		return "", false
	}
	switch {
	case in.Body == "":
		g.violation(w, http.StatusUnprocessableEntity, "Validation Failed: body is missing")
		return "", false
	case len([]rune(in.Body)) > maxCommentBody:
		g.violation(w, http.StatusUnprocessableEntity, "Validation Failed: body is too long (maximum is %d characters)", maxCommentBody)
		return "", false
	}
	return in.Body, true
}

func (g *GitHub) createComment(w http.ResponseWriter, r *http.Request, repo string, n int) {
	if !g.pull(w, repo, n) {
		return
	}
	text, ok := g.commentBody(w, r)
	if !ok {
		return
	}
	g.mu.Lock()
	g.seq++
	c := &Comment{ID: g.seq, Author: g.Login, Body: text}
	g.comments[n] = append(g.comments[n], c)
	g.byID[c.ID] = c
	out := g.commentJSON(repo, c)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Location", out["url"].(string))
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(out)
}

func (g *GitHub) updateComment(w http.ResponseWriter, r *http.Request, repo string, id int64) {
	g.mu.Lock()
	c, ok := g.byID[id]
	g.mu.Unlock()
	if repo != g.Repo || !ok {
		ghError(w, http.StatusNotFound, "Not Found")
		return
	}
	if c.Author != g.Login {
		ghError(w, http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	text, ok := g.commentBody(w, r)
	if !ok {
		return
	}
	g.mu.Lock()
	c.Body = text
	c.Edits++
	out := g.commentJSON(repo, c)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(out)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
