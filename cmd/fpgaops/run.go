package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/dashboard"
	"github.com/fpgaops/fpgaops/reconcile/ha"
	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/reconcile/state/etcdstore"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

func newRunCommand(s streams) *cobra.Command {
	f := runFlags{engine: newEngineFlags()}
	cmd := &cobra.Command{
		Use:   "run --git URL --state-dir DIR [--interval DUR | --schedule CRON] [--listen ADDR]",
		Short: "Run as a controller: reconcile on a schedule and on every push",
		Long: `Run fetches the fleet repository, validates the followed revision and, when
it is valid, plans and applies it, as 'fpgaops apply' would: at start, then
on the schedule (--interval, --schedule, or else the repository policy's
schedule), sooner after a failure (retry interval with backoff), and at once
when a verified push webhook arrives. A revision that fails to fetch,
verify or validate is rejected and reported; the last good one stays in
force.

Each run is what 'fpgaops apply' does, with the same backends (--vms), the
same gates and the same state: a cloud's changes (--os-cloud) are part of
the plan, server replacements only within the policy's windows and budget,
never a protected binding's.

HTTP endpoints on --listen:
  GET  /               the dashboard: the fleet, what is held and why, runs
  GET  /status         revisions, conditions, nodes, held changes, last failure
  GET  /metrics        Prometheus metrics (fpgaops_*)
  GET  /healthz
  POST /hooks/github   X-Hub-Signature-256 (HMAC-SHA256 of the body): push,
                       pull_request (planned, with --git-host)
  POST /hooks/gitlab   X-Gitlab-Token: push, Merge Request Hook
  POST /reconcile, /suspend, /resume, /runs/{id}/approve   with the admin
                       bearer token

--notify-config tells webhooks, Slack or Alertmanager when a run or a
change fails, a VM is degraded, drift is found, a revision is rejected, a
change is held too long, and when the controller recovers. --git-host sets
commit statuses and comments each pull request's plan.

SIGTERM or SIGINT stops it: card chains in flight finish, no new one starts.
'fpgaops status' and 'fpgaops history' read the state directory meanwhile.

With --etcd, several controllers share the fleet: they elect one leader,
which alone fetches, plans and applies; the others serve the shared status
and take over when the leader's lease expires (docs/controller.md, High
availability).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runController(cmd.Context(), s, &f)
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func runController(ctx context.Context, s streams, f *runFlags) error {
	log, logErr := newLogger(s, f.logFormat)
	opts, src, err := f.options()
	srv, srvErr := controller.NewServer(controller.ServeOptions{Addr: f.listen, TLSCertFile: f.tlsCert, TLSKeyFile: f.tlsKey, AllowPlainHTTP: f.allowPlainHTTP, Log: log})
	if err := errors.Join(err, logErr, srvErr); err != nil {
		return err
	}
	var ln net.Listener
	if !f.once {
		if ln, err = net.Listen("tcp", f.listen); err != nil {
			return err
		}
		defer ln.Close()
	}
	store, leader, closeState, err := f.openState(ln, log)
	if err != nil {
		return err
	}
	defer closeState()
	// The controller keeps what it checked of each file: a commit's run
	// parses the files the commit changed.
	cache := spec.NewFileCache()
	load := func(dir string) (*spec.Fleet, error) { return spec.LoadWith(dir, spec.Options{Cache: cache}) }
	opts.Source, opts.Store, opts.Load, opts.Log = src, store, load, log
	if leader != nil {
		opts.Leader = leader
	}
	e := f.engine.engine(store, log)
	e.LastGood = lastGood(src)
	step := &controller.Step{Engine: e, ScopeFor: f.scopeFor}
	opts.Reconciler = step
	opts.Registry = prometheus.NewRegistry()
	if f.notify != nil {
		n, err := notify.New(*f.notify, notify.Options{Log: log, Registry: opts.Registry})
		if err != nil {
			return err
		}
		// What a run told is delivered before the process ends, within
		// a bound: a stalled target does not hold up shutdown.
		defer func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := n.Close(ctx); err != nil {
				log.Warn("notifications", "err", err)
			}
		}()
		opts.Notifier, opts.HeldLongerThan = n, n.Config().HeldLongerThan
	}
	opts.PlanText = func(p *plans.Plan) string {
		var b strings.Builder
		render.Text(&b, p, render.Style{})
		return b.String()
	}
	c, err := controller.New(opts)
	if err != nil {
		return err
	}
	step.Approver = c
	dash, err := dashboard.New(c, store, dashboard.Options{Log: log})
	if err != nil {
		return err
	}
	step.Watcher = dash
	srv.SetUI(dash)
	// Commit statuses asked for are set before the process ends, within
	// a bound.
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			log.Warn("git host", "err", err)
		}
	}()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if f.once {
		run := c.RunOnce(ctx, "manual")
		if run.Outcome != state.OutcomeApplied {
			for _, p := range run.Problems {
				fmt.Fprintln(s.err, spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message})
			}
			return &exitError{code: 1, err: fmt.Errorf("run %s: %s", run.Outcome, run.Error)}
		}
		fmt.Fprintf(s.out, "Applied revision %s: %d change(s), %d violation(s).\n", run.Revision, run.Results.Applied, run.Violations)
		return nil
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln, c) }()
	log.Info("controller started", "source", src.String(), "listen", srv.Scheme()+"://"+ln.Addr().String(), "state", f.stateName())
	runErr := c.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		runErr = errors.Join(runErr, err)
	}
	log.Info("controller stopped")
	return runErr
}

// openState opens the controller's state: the state directory, locked
// for the controller's lifetime (no other writer shares it meanwhile);
// or, with --etcd, the state shared by the fleet's controllers and this
// controller's part in their election. closeState gives the lead up at
// once, so that another controller takes over without waiting.
func (f *runFlags) openState(ln net.Listener, log *slog.Logger) (store state.Store, leader *ha.Elector, closeState func(), err error) {
	if !f.etcd.on() {
		local, err := state.Open(f.engine.stateDir, state.Options{Holder: "fpgaops run"})
		if err != nil {
			return nil, nil, nil, err
		}
		return local, nil, func() { local.Close() }, nil
	}
	client, err := f.etcd.dial()
	if err != nil {
		return nil, nil, nil, err
	}
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s pid %d (%s)", host, os.Getpid(), ln.Addr())
	leader, err = ha.New(ha.Config{Client: client, Prefix: f.etcd.prefix, Identity: id, LeaseTTL: f.leaseTTL, Log: log})
	if err == nil {
		store, err = etcdstore.New(client, etcdstore.Options{Prefix: f.etcd.prefix, Guard: leader.Guard})
	}
	if err != nil {
		client.Close()
		return nil, nil, nil, err
	}
	return store, leader, func() { leader.Close(); client.Close() }, nil
}

// stateName says where the state is, for the log.
func (f *runFlags) stateName() string {
	if f.etcd.on() {
		return "etcd " + strings.Join(f.etcd.endpoints, ",") + " " + f.etcd.prefix
	}
	return f.engine.stateDir
}

func newLogger(s streams, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(s.err, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(s.err, nil)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// lastGood loads a revision fetched before, which a failed rollout step
// reverts to.
func lastGood(src *source.Source) func(context.Context, string) (*spec.Fleet, error) {
	return func(_ context.Context, revision string) (*spec.Fleet, error) {
		rev, err := src.Checkout(revision)
		if err != nil {
			return nil, err
		}
		fleet, err := spec.Load(rev.Dir)
		if err != nil {
			return nil, fmt.Errorf("revision %s: %w", revision, err)
		}
		fleet.Revision = rev.Commit
		return fleet, nil
	}
}
