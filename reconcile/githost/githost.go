// Package githost tells the git host what the controller made of a
// commit: a commit status (pending, then success or failure, with a
// short description and a link to the dashboard), and on a pull or merge
// request one comment with the plan, edited in place on each push. It
// speaks GitHub's and GitLab's REST APIs (commit statuses, issue
// comments, merge request notes) with a token that never appears in an
// error or a log.
//
// It only reports: what to say, and when, is the controller's.
package githost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// State is a commit status's state, in the terms both hosts share.
type State string

const (
	Pending  State = "pending"
	Success  State = "success"
	Failure  State = "failure"
	Canceled State = "canceled"
)

// Status is what the controller says of a commit.
type Status struct {
	Commit string
	State  State
	// Context names the check on the host (GitHub's context, GitLab's
	// name): "fpgaops", "fpgaops/plan".
	Context     string
	Description string
	// TargetURL links to the run on the dashboard; empty for none.
	TargetURL string
}

// Host is a git host's API as the controller uses it.
type Host interface {
	// SetStatus sets the commit's status for its context.
	SetStatus(ctx context.Context, s Status) error
	// Comment puts body on pull (merge) request number as the one comment
	// that holds marker: it edits the comment that already does, or
	// makes it.
	Comment(ctx context.Context, number int, marker, body string) error
	String() string
}

// MaxDescription bounds a status's description: GitHub takes 140
// characters.
const MaxDescription = 140

// Truncate shortens s to at most n characters, marking the cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// client is what both hosts share: JSON over HTTPS with a token.
type client struct {
	name string // "github dc1/fleet", for errors
	base string
	http *http.Client
	auth func(*http.Request)
}

// maxAnswer bounds what is read of an answer; a page of 100 comments of
// the largest size GitHub takes is about 6.5 MB.
const maxAnswer = 16 << 20

// do sends a request with a JSON body (nil for none) and decodes the
// answer into out (nil to ignore it) when its status is want. Errors name
// the host, the method and the path, never the token.
func (c *client) do(ctx context.Context, method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", c.name, method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "fpgaops")
	c.auth(req)
	hc := c.http
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %s %s: %w", c.name, method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var msg struct {
			Message any `json:"message"`
		}
		detail := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &msg) == nil && msg.Message != nil {
			detail = fmt.Sprint(msg.Message)
		}
		return &APIError{Host: c.name, Method: method, Path: path, Status: resp.StatusCode,
			Message: resp.Status + ": " + Truncate(detail, 200)}
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
			return fmt.Errorf("%s: %s %s: answer: %w", c.name, method, path, err)
		}
	}
	return nil
}

// APIError is an answer other than the one a request wants.
type APIError struct {
	Host, Method, Path string
	Status             int
	Message            string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s %s: %s", e.Host, e.Method, e.Path, e.Message)
}

// refused reports whether err is the host refusing the request for this
// object (not found, or not the token's to change).
func refused(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden)
}

// maxPages bounds the pages of comments read to find the controller's
// own: 2,000 comments.
const maxPages = 20

// perPage is the most comments either host gives in one page.
const perPage = 100

// comment is a comment or note as the hosts list them.
type comment struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	System bool   `json:"system"` // GitLab's notes of events
}

// findComments lists the comments page by page and returns the IDs of
// those that hold marker, oldest first.
func findComments(list func(page int) ([]comment, error), marker string) ([]int64, error) {
	var ids []int64
	for page := 1; page <= maxPages; page++ {
		cs, err := list(page)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if !c.System && strings.Contains(c.Body, marker) {
				ids = append(ids, c.ID)
			}
		}
		if len(cs) < perPage {
			break
		}
	}
	return ids, nil
}

// upsert edits the first of the comments that the token may edit, or
// makes a new one: a comment that only quotes the marker is someone
// else's, and the host refuses its edit.
func upsert(ids []int64, edit func(id int64) error, create func() error) error {
	for _, id := range ids {
		if err := edit(id); !refused(err) {
			return err
		}
	}
	return create()
}
