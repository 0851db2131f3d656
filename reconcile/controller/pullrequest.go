package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/githost"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

// Heads fetches the head commit of a pull request from the repository
// the controller follows. done drops what was written out for it.
type Heads interface {
	FetchCommit(ctx context.Context, commit string) (rev source.Revision, done func(), err error)
}

// Planner plans a valid revision without applying it (Step): head,
// against the fleet as observed now through the nodes of trusted. The
// endpoints head names are never called: whoever opens a pull request
// writes them.
type Planner interface {
	Plan(ctx context.Context, head, trusted *spec.Fleet) (*plans.Plan, error)
}

// HeadSource is Heads over the followed repository: each head is fetched
// by its hash (over every branch where the server does not serve commits
// by hash) into a cache of its own, apart from the followed ref's.
type HeadSource struct {
	// Config is the followed source's, with another CacheDir.
	Config source.Config
}

// FetchCommit fetches and writes out the commit. A head is planned,
// never applied: it need not carry a trusted signature.
func (h *HeadSource) FetchCommit(ctx context.Context, commit string) (source.Revision, func(), error) {
	cfg := h.Config
	cfg.Ref = source.Ref{Kind: source.RefCommit, Name: strings.ToLower(commit)}
	cfg.Keyring = ""
	s, err := source.New(cfg)
	if err != nil {
		return source.Revision{}, func() {}, err
	}
	rev, err := s.Fetch(ctx)
	return rev, func() { s.Retain() }, err
}

// pullRequest is a pull (merge) request's push, as its webhook says.
type pullRequest struct {
	provider string // github, gitlab
	number   int
	head     string // the head commit
	base     string // the branch it merges into
}

// maxQueuedPulls bounds the pull requests waiting for a plan; each keeps
// only its latest head.
const maxQueuedPulls = 64

// pulls plans pull requests one at a time, in the background, latest
// head first per request.
type pulls struct {
	mu      sync.Mutex
	pending map[string]pullRequest
	order   []string
	wake    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
}

func (c *Controller) startPulls() {
	ctx, cancel := context.WithCancel(context.Background())
	c.pulls = &pulls{pending: map[string]pullRequest{}, wake: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.pulls.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.pulls.wake:
			}
			for {
				pr, ok := c.pulls.next()
				if !ok {
					break
				}
				c.planPull(ctx, pr)
			}
		}
	}()
}

// queue asks for a plan of the pull request's head; it reports false when
// too many are waiting.
func (p *pulls) queue(pr pullRequest) bool {
	key := fmt.Sprintf("%s/%d", pr.provider, pr.number)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pending[key]; !ok {
		if len(p.order) >= maxQueuedPulls {
			return false
		}
		p.order = append(p.order, key)
	}
	p.pending[key] = pr
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

func (p *pulls) next() (pullRequest, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		return pullRequest{}, false
	}
	key := p.order[0]
	p.order = p.order[1:]
	pr := p.pending[key]
	delete(p.pending, key)
	return pr, true
}

// wantsPlan says whether a pull request into base is planned: those into
// the followed branch, or all when the controller follows no branch.
func (c *Controller) wantsPlan(base string) bool {
	return c.opts.PlanBranch == "" || c.opts.PlanBranch == base
}

// planPull plans a pull request's head against the live fleet, and puts
// the plan on the pull request as its one comment from the controller,
// with a commit status on the head. Nothing is applied, and the fleet is
// reached only through the endpoints of the last valid revision: the
// head is untrusted (whoever opens a pull request writes it).
func (c *Controller) planPull(ctx context.Context, pr pullRequest) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	statusCtx := c.opts.StatusContext + "/plan"
	c.setPlanStatus(ctx, pr.head, statusCtx, githost.Pending, "planning against the live fleet")
	comment, state, desc := c.pullComment(ctx, pr)
	err := c.opts.GitHost.Comment(ctx, pr.number, c.planMarker(), comment)
	if err != nil {
		c.metrics.gitHost.WithLabelValues("comment", "failed").Inc()
		c.log.Warn("pull request comment not made", "host", c.opts.GitHost.String(), "pull", pr.number, "err", err)
	} else {
		c.metrics.gitHost.WithLabelValues("comment", "sent").Inc()
		c.log.Info("pull request planned", "pull", pr.number, "head", pr.head, "result", desc)
	}
	c.setPlanStatus(ctx, pr.head, statusCtx, state, desc)
}

func (c *Controller) setPlanStatus(ctx context.Context, commit, context string, s githost.State, desc string) {
	err := c.opts.GitHost.SetStatus(ctx, githost.Status{Commit: commit, State: s, Context: context, Description: desc, TargetURL: c.runURL(0)})
	if err != nil {
		c.metrics.gitHost.WithLabelValues("status", "failed").Inc()
		c.log.Warn("commit status not set", "host", c.opts.GitHost.String(), "commit", commit, "err", err)
		return
	}
	c.metrics.gitHost.WithLabelValues("status", "sent").Inc()
}

// planMarker marks the controller's comment on a pull request; it names
// the source, so two controllers on one repository keep apart.
func (c *Controller) planMarker() string {
	return "<!-- fpgaops plan: " + strings.ReplaceAll(c.status.Source, "--", "-") + " -->"
}

// pullComment plans the head and says what the plan is, or why there is
// none, with the commit status that goes with it.
func (c *Controller) pullComment(ctx context.Context, pr pullRequest) (string, githost.State, string) {
	var b strings.Builder
	b.WriteString(c.planMarker() + "\n")
	short := pr.head
	if len(short) > 12 {
		short = short[:12]
	}
	fmt.Fprintf(&b, "#### fpgaops plan for `%s`\n\n", short)
	fail := func(state githost.State, desc, text string) (string, githost.State, string) {
		b.WriteString(desc + ":\n\n" + fenced(text, maxCommentText))
		return b.String(), state, desc
	}
	rev, done, err := c.opts.Heads.FetchCommit(ctx, pr.head)
	defer done()
	if err != nil {
		return fail(githost.Failure, "the head could not be fetched", err.Error())
	}
	fleet, err := c.opts.Load(rev.Dir)
	if err != nil {
		var lines []string
		for _, p := range problems(err) {
			lines = append(lines, spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message}.Error())
		}
		return fail(githost.Failure, fmt.Sprintf("invalid: %d mistake(s); the controller would reject it", len(lines)), strings.Join(lines, "\n"))
	}
	fleet.Revision = rev.Commit
	if c.opts.Drift != "" {
		fleet.Policy.Drift = c.opts.Drift
	}
	c.mu.Lock()
	trusted := c.trusted
	c.mu.Unlock()
	if trusted == nil {
		return fail(githost.Failure, "not planned", "the controller has no valid revision yet, whose nodes it would observe; push again after its first run")
	}
	p, err := c.opts.Planner.Plan(ctx, fleet, trusted)
	if err != nil {
		return fail(githost.Failure, "the plan failed", err.Error())
	}
	fmt.Fprintf(&b, "Planned against the fleet as observed at %s, through the nodes of revision %s; nothing was applied. "+
		"Merged, it is applied within the policy's windows and budget.\n\n", c.now().UTC().Format(time.RFC3339), trusted.Revision)
	b.WriteString(fenced(c.opts.PlanText(p), maxCommentText))
	s := p.Summary
	desc := fmt.Sprintf("%d to change, %d held back, %d to report", s.Total(), s.Held, s.Report)
	return b.String(), githost.Success, desc
}

// maxCommentText bounds the plan in a comment: GitHub takes 65,536
// characters in one.
const maxCommentText = 60000

// fenced puts text in a code block whose fence no line of it can close,
// cut at a line to at most max characters.
func fenced(text string, max int) string {
	if len(text) > max {
		cut := strings.LastIndexByte(text[:max], '\n')
		if cut < 0 {
			cut = max
		}
		more := strings.Count(text[cut:], "\n")
		text = text[:cut] + fmt.Sprintf("\n… %d more line(s): run fpgaops plan for the whole plan\n", more)
	}
	fence := "```"
	for strings.Contains(text, fence) {
		fence += "`"
	}
	return fence + "text\n" + strings.TrimRight(text, "\n") + "\n" + fence + "\n"
}

// errNoPlanning is the answer to a pull request webhook when pull
// requests are not planned.
var errNoPlanning = errors.New("pull requests are not planned: start the controller with --git-host")
