package githost

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// GitHub is a repository on GitHub or GitHub Enterprise Server.
type GitHub struct {
	c    client
	repo string
}

// DefaultGitHubAPI is github.com's API.
const DefaultGitHubAPI = "https://api.github.com"

var ownerRepo = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]*/[A-Za-z0-9_.][-A-Za-z0-9_.]*$`)

// NewGitHub speaks to repo ("owner/name") through the API at api (""
// means github.com's; GitHub Enterprise Server's is
// https://HOST/api/v3) with a token: a personal access token or an
// app's installation token, allowed to write commit statuses and pull
// request comments.
func NewGitHub(api, repo, token string, hc *http.Client) (*GitHub, error) {
	if api == "" {
		api = DefaultGitHubAPI
	}
	if err := checkAPI(api); err != nil {
		return nil, err
	}
	if !ownerRepo.MatchString(repo) {
		return nil, fmt.Errorf("github repository %q: want OWNER/NAME", repo)
	}
	if token == "" {
		return nil, fmt.Errorf("github %s: no token", repo)
	}
	return &GitHub{repo: repo, c: client{
		name: "github " + repo, base: strings.TrimSuffix(api, "/"), http: hc,
		auth: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("Accept", "application/vnd.github+json")
			r.Header.Set("X-GitHub-Api-Version", "2022-11-28")
		},
	}}, nil
}

func (g *GitHub) String() string { return g.c.name }

// githubStates maps a State to GitHub's: it has no canceled.
var githubStates = map[State]string{Pending: "pending", Success: "success", Failure: "failure", Canceled: "error"}

// SetStatus is POST /repos/{owner}/{repo}/statuses/{sha}.
func (g *GitHub) SetStatus(ctx context.Context, s Status) error {
	body := map[string]string{
		"state": githubStates[s.State], "context": s.Context,
		"description": Truncate(s.Description, MaxDescription),
	}
	if s.TargetURL != "" {
		body["target_url"] = s.TargetURL
	}
	return g.c.do(ctx, http.MethodPost, "/repos/"+g.repo+"/statuses/"+url.PathEscape(s.Commit), body, nil, http.StatusCreated)
}

// Comment finds its comment among the pull request's issue comments
// (GET /repos/{owner}/{repo}/issues/{n}/comments) and edits it (PATCH
// /repos/{owner}/{repo}/issues/comments/{id}), or makes it (POST
// /repos/{owner}/{repo}/issues/{n}/comments).
func (g *GitHub) Comment(ctx context.Context, number int, marker, body string) error {
	issue := fmt.Sprintf("/repos/%s/issues/%d/comments", g.repo, number)
	ids, err := findComments(func(page int) ([]comment, error) {
		var cs []comment
		err := g.c.do(ctx, http.MethodGet, fmt.Sprintf("%s?per_page=%d&page=%d", issue, perPage, page), nil, &cs, http.StatusOK)
		return cs, err
	}, marker)
	if err != nil {
		return err
	}
	payload := map[string]string{"body": body}
	return upsert(ids, func(id int64) error {
		return g.c.do(ctx, http.MethodPatch, fmt.Sprintf("/repos/%s/issues/comments/%d", g.repo, id), payload, nil, http.StatusOK)
	}, func() error {
		return g.c.do(ctx, http.MethodPost, issue, payload, nil, http.StatusCreated)
	})
}

// checkAPI refuses an API base that is not an http(s) URL.
func checkAPI(api string) error {
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("git host API %q: want an https:// URL", api)
	}
	return nil
}
