package githosttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitLab is a fake GitLab API (/api/v4) for one project.
type GitLab struct {
	t   testing.TB
	srv *httptest.Server

	// Project is the project's path ("group/name"), ID its number; the
	// API takes either, the path URL-encoded. Token is the access token
	// it takes (PRIVATE-TOKEN), whose user is Username.
	Project, Token, Username string
	ID                       int

	mu       sync.Mutex
	statuses map[string][]Status // by commit
	notes    map[int][]*gitlabNote
	mrs      map[int]bool
	byID     map[int64]*gitlabNote
	seq      int64
	requests []string
}

type gitlabNote struct {
	Comment
	system bool
}

// NewGitLab starts the fake; it stops when the test ends.
func NewGitLab(t testing.TB, project string) *GitLab {
	g := &GitLab{t: t, Project: project, ID: 4242, Token: "glpat-" + strings.Repeat("y2", 10), Username: "fpgaops-bot",
		statuses: map[string][]Status{}, notes: map[int][]*gitlabNote{}, mrs: map[int]bool{}, byID: map[int64]*gitlabNote{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

// URL is the API's base URL, as https://gitlab.com/api/v4 is.
func (g *GitLab) URL() string { return g.srv.URL + "/api/v4" }

// OpenMergeRequest makes merge request iid exist, with the system note
// GitLab adds when commits are pushed to it.
func (g *GitLab) OpenMergeRequest(iid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mrs[iid] = true
	g.addNote(iid, "gitlab", "added 1 commit <!-- fpgaops -->", true)
}

// AddNote adds a note by another user, as a reviewer would.
func (g *GitLab) AddNote(iid int, author, body string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addNote(iid, author, body, false)
}

func (g *GitLab) addNote(iid int, author, body string, system bool) *gitlabNote {
	g.seq++
	n := &gitlabNote{Comment{ID: g.seq, Author: author, Body: body}, system}
	g.notes[iid] = append(g.notes[iid], n)
	g.byID[n.ID] = n
	return n
}

// Statuses are the statuses set on a commit, in order.
func (g *GitLab) Statuses(commit string) []Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Status(nil), g.statuses[commit]...)
}

// Notes are merge request iid's notes that are not system notes.
func (g *GitLab) Notes(iid int) []Comment {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Comment
	for _, n := range g.notes[iid] {
		if !n.system {
			out = append(out, n.Comment)
		}
	}
	return out
}

// Requests lists "METHOD escaped-path" of every request, in order.
func (g *GitLab) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.requests...)
}

var (
	glStatusPath = regexp.MustCompile(`^/api/v4/projects/([^/]+)/statuses/([0-9a-f]{40})$`)
	glNotesPath  = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/([0-9]+)/notes$`)
	glNotePath   = regexp.MustCompile(`^/api/v4/projects/([^/]+)/merge_requests/([0-9]+)/notes/([0-9]+)$`)
)

// glError answers as GitLab does: {"message": ...}.
func glError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (g *GitLab) violation(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.t.Errorf("gitlab fake: request breaks the API reference: %s", msg)
	glError(w, code, msg)
}

func (g *GitLab) serve(w http.ResponseWriter, r *http.Request) {
	// The project's path is one segment, URL-encoded: route on the
	// path as sent.
	p := r.URL.EscapedPath()
	g.mu.Lock()
	g.requests = append(g.requests, r.Method+" "+p)
	g.mu.Unlock()
	if r.Header.Get("PRIVATE-TOKEN") != g.Token {
		glError(w, http.StatusUnauthorized, "401 Unauthorized")
		return
	}
	switch {
	case r.Method == http.MethodPost && glStatusPath.MatchString(p):
		m := glStatusPath.FindStringSubmatch(p)
		if g.project(w, m[1]) {
			g.createStatus(w, r, m[2])
		}
	case (r.Method == http.MethodGet || r.Method == http.MethodPost) && glNotesPath.MatchString(p):
		m := glNotesPath.FindStringSubmatch(p)
		if !g.project(w, m[1]) || !g.mr(w, atoi(m[2])) {
			return
		}
		if r.Method == http.MethodGet {
			g.listNotes(w, r, atoi(m[2]))
		} else {
			g.createNote(w, r, atoi(m[2]))
		}
	case r.Method == http.MethodPut && glNotePath.MatchString(p):
		m := glNotePath.FindStringSubmatch(p)
		if g.project(w, m[1]) && g.mr(w, atoi(m[2])) {
			g.updateNote(w, r, atoi(m[2]), int64(atoi(m[3])))
		}
	default:
		g.violation(w, http.StatusNotFound, "%s %s is not an endpoint fpgaops uses", r.Method, p)
	}
}

// project checks the :id of a path: the number, or the path encoded.
func (g *GitLab) project(w http.ResponseWriter, id string) bool {
	if id == fmt.Sprint(g.ID) || id == url.PathEscape(g.Project) {
		return true
	}
	glError(w, http.StatusNotFound, "404 Project Not Found")
	return false
}

func (g *GitLab) mr(w http.ResponseWriter, iid int) bool {
	g.mu.Lock()
	ok := g.mrs[iid]
	g.mu.Unlock()
	if !ok {
		glError(w, http.StatusNotFound, "404 Not found")
	}
	return ok
}

// terminal states end a status; a new one for the same commit and name
// starts another.
var terminal = map[string]bool{"success": true, "failed": true, "canceled": true, "skipped": true}

// transitions name the event that moves a status into a state, as
// GitLab's errors do.
var transitions = map[string]string{"pending": "enqueue", "running": "run", "success": "success", "failed": "drop", "canceled": "cancel", "skipped": "skip"}

func (g *GitLab) createStatus(w http.ResponseWriter, r *http.Request, sha string) {
	var in struct {
		State       string   `json:"state"`
		Ref         string   `json:"ref"`
		Name        string   `json:"name"`
		Context     string   `json:"context"`
		TargetURL   string   `json:"target_url"`
		Description string   `json:"description"`
		Coverage    *float64 `json:"coverage"`
		PipelineID  *int     `json:"pipeline_id"`
	}
	if !body(w, r, &in, g.violation) {
		return
	}
	if _, ok := transitions[in.State]; !ok {
		g.violation(w, http.StatusBadRequest, "state does not have a valid value")
		return
	}
	name := in.Name
	if name == "" {
		name = in.Context
	}
	if name == "" {
		name = "default"
	}
	if len(in.Description) > 255 {
		g.violation(w, http.StatusBadRequest, "description is too long (maximum is 255 characters)")
		return
	}
	g.mu.Lock()
	var last *Status
	for i := range g.statuses[sha] {
		if s := &g.statuses[sha][i]; s.Context == name {
			last = s
		}
	}
	if last != nil && !terminal[last.State] && (last.State == in.State || (in.State == "pending" && last.State == "running")) {
		g.mu.Unlock()
		glError(w, http.StatusBadRequest, fmt.Sprintf("Cannot transition status via :%s from :%s (Reason(s): Status cannot transition via %q)",
			transitions[in.State], last.State, transitions[in.State]))
		return
	}
	g.statuses[sha] = append(g.statuses[sha], Status{in.State, name, in.Description, in.TargetURL})
	g.seq++
	id := g.seq
	g.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC3339)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{
		"id": id, "sha": sha, "ref": in.Ref, "status": in.State, "name": name, "target_url": in.TargetURL,
		"description": in.Description, "created_at": now, "started_at": nil, "finished_at": nil, "allow_failure": false,
		"coverage": in.Coverage, "author": map[string]any{"id": 1, "username": g.Username, "name": "fpgaops"},
	})
}

func (g *GitLab) noteJSON(iid int, n *gitlabNote) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	return map[string]any{
		"id": n.ID, "type": nil, "body": n.Body, "attachment": nil,
		"author":     map[string]any{"id": 1, "username": n.Author, "name": n.Author, "state": "active"},
		"created_at": now, "updated_at": now, "system": n.system, "noteable_id": 9000 + iid,
		"noteable_type": "MergeRequest", "noteable_iid": iid, "resolvable": false, "confidential": false, "internal": false,
	}
}

func (g *GitLab) listNotes(w http.ResponseWriter, r *http.Request, iid int) {
	q := r.URL.Query()
	per, page := 20, 1
	if v := q.Get("per_page"); v != "" {
		per = atoi(v)
	}
	if v := q.Get("page"); v != "" {
		page = atoi(v)
	}
	if per < 1 || per > 100 || page < 1 {
		g.violation(w, http.StatusBadRequest, "per_page %d (1 to 100), page %d", per, page)
		return
	}
	switch q.Get("sort") {
	case "", "asc", "desc":
	default:
		g.violation(w, http.StatusBadRequest, "sort does not have a valid value")
		return
	}
	switch q.Get("order_by") {
	case "", "created_at", "updated_at":
	default:
		g.violation(w, http.StatusBadRequest, "order_by does not have a valid value")
		return
	}
	g.mu.Lock()
	all := g.notes[iid]
	from, to := min((page-1)*per, len(all)), min(page*per, len(all))
	out := []map[string]any{}
	for _, n := range all[from:to] {
		out = append(out, g.noteJSON(iid, n))
	}
	g.mu.Unlock()
	w.Header().Set("X-Page", fmt.Sprint(page))
	w.Header().Set("X-Per-Page", fmt.Sprint(per))
	w.Header().Set("X-Total", fmt.Sprint(len(all)))
	next := ""
	if to < len(all) {
		next = fmt.Sprint(page + 1)
	}
	w.Header().Set("X-Next-Page", next)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// maxNoteBody is GitLab's limit on a note's body.
const maxNoteBody = 1000000

func (g *GitLab) noteBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	var in struct {
		Body string `json:"body"`
	}
	if !body(w, r, &in, g.violation) {
		return "", false
	}
	switch {
	case in.Body == "":
		g.violation(w, http.StatusBadRequest, "body is missing")
		return "", false
	case len([]rune(in.Body)) > maxNoteBody:
		g.violation(w, http.StatusBadRequest, "Note is too long (maximum is %d characters)", maxNoteBody)
		return "", false
	}
	return in.Body, true
}

func (g *GitLab) createNote(w http.ResponseWriter, r *http.Request, iid int) {
	text, ok := g.noteBody(w, r)
	if !ok {
		return
	}
	g.mu.Lock()
	n := g.addNote(iid, g.Username, text, false)
	out := g.noteJSON(iid, n)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(out)
}

func (g *GitLab) updateNote(w http.ResponseWriter, r *http.Request, iid int, id int64) {
	g.mu.Lock()
	n, ok := g.byID[id]
	g.mu.Unlock()
	if !ok || n.system {
		glError(w, http.StatusNotFound, "404 Note Not Found")
		return
	}
	if n.Author != g.Username {
		glError(w, http.StatusForbidden, "403 Forbidden")
		return
	}
	text, ok := g.noteBody(w, r)
	if !ok {
		return
	}
	g.mu.Lock()
	n.Body = text
	n.Edits++
	out := g.noteJSON(iid, n)
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
