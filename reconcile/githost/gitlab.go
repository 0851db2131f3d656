package githost

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// GitLab is a project on GitLab.
type GitLab struct {
	c       client
	project string // path-escaped: "dc1%2Ffleet" or "42"
}

// DefaultGitLabAPI is gitlab.com's API.
const DefaultGitLabAPI = "https://gitlab.com/api/v4"

// NewGitLab speaks to project (its numeric ID or its path, "group/name")
// through the API at api ("" means gitlab.com's; a self-managed one's is
// https://HOST/api/v4) with a token (project, group or personal access
// token with the api scope), sent as PRIVATE-TOKEN.
func NewGitLab(api, project, token string, hc *http.Client) (*GitLab, error) {
	if api == "" {
		api = DefaultGitLabAPI
	}
	if err := checkAPI(api); err != nil {
		return nil, err
	}
	if project == "" || strings.HasPrefix(project, "/") || strings.HasSuffix(project, "/") {
		return nil, fmt.Errorf("gitlab project %q: want its ID or GROUP/NAME", project)
	}
	if token == "" {
		return nil, fmt.Errorf("gitlab %s: no token", project)
	}
	return &GitLab{project: url.PathEscape(project), c: client{
		name: "gitlab " + project, base: strings.TrimSuffix(api, "/"), http: hc,
		auth: func(r *http.Request) { r.Header.Set("PRIVATE-TOKEN", token) },
	}}, nil
}

func (g *GitLab) String() string { return g.c.name }

// gitlabStates maps a State to GitLab's.
var gitlabStates = map[State]string{Pending: "pending", Success: "success", Failure: "failed", Canceled: "canceled"}

// SetStatus is POST /projects/:id/statuses/:sha.
func (g *GitLab) SetStatus(ctx context.Context, s Status) error {
	body := map[string]string{
		"state": gitlabStates[s.State], "name": s.Context,
		"description": Truncate(s.Description, MaxDescription),
	}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	return g.c.do(ctx, http.MethodPost, "/projects/"+g.project+"/statuses/"+url.PathEscape(s.Commit), body, nil, http.StatusCreated)
}

// Comment finds its note among the merge request's (GET
// /projects/:id/merge_requests/:iid/notes) and edits it (PUT
// .../notes/:note_id), or makes it (POST .../notes).
func (g *GitLab) Comment(ctx context.Context, iid int, marker, body string) error {
	notes := fmt.Sprintf("/projects/%s/merge_requests/%d/notes", g.project, iid)
	ids, err := findComments(func(page int) ([]comment, error) {
		var cs []comment
		err := g.c.do(ctx, http.MethodGet, fmt.Sprintf("%s?per_page=%d&page=%d&sort=asc&order_by=created_at", notes, perPage, page), nil, &cs, http.StatusOK)
		return cs, err
	}, marker)
	if err != nil {
		return err
	}
	payload := map[string]string{"body": body}
	return upsert(ids, func(id int64) error {
		return g.c.do(ctx, http.MethodPut, fmt.Sprintf("%s/%d", notes, id), payload, nil, http.StatusOK)
	}, func() error {
		return g.c.do(ctx, http.MethodPost, notes, payload, nil, http.StatusCreated)
	})
}
