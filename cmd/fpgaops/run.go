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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runFlags are the controller's flags.
type runFlags struct {
	git, ref, path, cacheDir  string
	interval, jitter          time.Duration
	retry, maxRetry           time.Duration
	schedule, listen          string
	stateDir, drift           string
	webhookSecretFile         string
	adminTokenFile            string
	keyringFile               string
	gitUsername, gitPassFile  string
	gitTokenFile, gitCAFile   string
	sshKeyFile, sshKnownHosts string
	once                      bool
	logFormat                 string
	osBootTimeout             time.Duration
	provider                  providerFlags
	tlsCert, tlsKey           string
	allowPlainHTTP            bool
}

func (f *runFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.git, "git", "", "URL of the fleet repository: file://, git://, http(s):// or ssh://")
	fs.StringVar(&f.ref, "ref", "", "what to follow: a branch (NAME or branch:NAME), tag:NAME, semver:RANGE\n(the highest matching tag) or a commit hash (default: the remote's HEAD)")
	fs.StringVar(&f.path, "path", "", "the fleet's directory inside the repository")
	fs.DurationVar(&f.interval, "interval", 0, "run every DUR (default: the policy's schedule, else 5m)")
	fs.StringVar(&f.schedule, "schedule", "", "run on a cron schedule, e.g. \"*/30 * * * *\" (default: the policy's)")
	fs.DurationVar(&f.jitter, "jitter", 0, "delay each scheduled run by a random time up to DUR")
	fs.DurationVar(&f.retry, "retry-interval", 30*time.Second, "first wait after a failed run; doubles per further failure")
	fs.DurationVar(&f.maxRetry, "max-retry-interval", 0, "longest wait between retries (default: the interval, or 10m)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address of the status, metrics and webhook endpoints")
	fs.StringVar(&f.stateDir, "state-dir", "", "where the controller keeps its history, inventory and journal (required)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "where the repository is cached (default: STATE-DIR/source)")
	fs.StringVar(&f.drift, "drift", "", "override the policy's drift mode: report or correct")
	fs.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the shared secret of /hooks/github and /hooks/gitlab")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the bearer token of /suspend, /resume and /reconcile")
	fs.StringVar(&f.keyringFile, "verify-keyring", "", "armored OpenPGP public keys; when given, the followed commit must be\nsigned by one of them")
	fs.StringVar(&f.gitUsername, "git-username", "", "HTTP basic auth user (or FPGAOPS_GIT_USERNAME)")
	fs.StringVar(&f.gitPassFile, "git-password-file", "", "file holding the HTTP password or access token used as password\n(or FPGAOPS_GIT_PASSWORD)")
	fs.StringVar(&f.gitTokenFile, "git-token-file", "", "file holding an HTTP bearer token (or FPGAOPS_GIT_TOKEN)")
	fs.StringVar(&f.gitCAFile, "git-ca-file", "", "extra CA certificates (PEM) for an https remote")
	fs.StringVar(&f.sshKeyFile, "ssh-key-file", "", "private key for an ssh:// remote")
	fs.StringVar(&f.sshKnownHosts, "ssh-known-hosts", "", "known_hosts file that must list the ssh:// remote's host key")
	fs.BoolVar(&f.once, "once", false, "make one run and exit: 0 when the revision was applied, 1 otherwise")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.provider.osCloud, "os-cloud", "", "the OpenStack cloud (clouds.yaml entry) that manages the VMs of nodes with\na hostname: each run applies its changes after the fleet's\n(default: OS_CLOUD or the OS_* variables, if set)")
	fs.DurationVar(&f.osBootTimeout, "os-boot-timeout", openstack.DefaultBootTimeout, "how long a replaced OpenStack server may take to go and to be ACTIVE again")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve --listen over HTTPS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the key (PEM) of --tls-cert")
	fs.BoolVar(&f.allowPlainHTTP, "allow-plain-http", false, "serve plain HTTP off loopback, behind a proxy that terminates TLS")
	f.provider.register(fs)
}

func newRunCommand(s streams) *cobra.Command {
	var f runFlags
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

With an OpenStack cloud (--os-cloud, or OS_CLOUD or the OS_* variables and
nodes with a hostname), each run then plans and applies the cloud's changes
for those nodes as 'fpgaops apply --os-cloud' does: server replacements
only within the policy's windows and budget, never a protected binding's.
The history and the status record them; a failed one fails the run.

HTTP endpoints on --listen:
  GET  /status         last applied and attempted revision, conditions, nodes
  GET  /metrics        Prometheus metrics (fpgaops_*)
  GET  /healthz
  POST /hooks/github   X-Hub-Signature-256 (HMAC-SHA256 of the body)
  POST /hooks/gitlab   X-Gitlab-Token
  POST /reconcile, /suspend, /resume   with the admin bearer token

SIGTERM or SIGINT stops it: card chains in flight finish, no new one starts.
'fpgaops status' and 'fpgaops history' read the state directory meanwhile.`,
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
	lock, err := state.Acquire(f.stateDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	store, err := state.Open(f.stateDir, state.Options{})
	if err != nil {
		return err
	}
	pf := f.provider
	opts.Source, opts.Store, opts.Load, opts.Log = src, store, spec.Load, log
	step := &controller.Step{
		NewProvider: func(fleet *spec.Fleet) (providers.Provider, error) { return newProvider(fleet, &pf) },
		Store:       store,
		Concurrency: pf.Concurrency,
		NodeTimeout: pf.NodeTimeout,
		Log:         log,
		OpenStack:   pf.openStack(),
	}
	if pf.openStack() {
		step.Cloud = &controller.OpenStackStep{Options: openstack.Options{Cloud: pf.osCloud}, BootTimeout: f.osBootTimeout, Log: log}
	}
	opts.Reconciler = step
	c, err := controller.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if f.once {
		run := c.RunOnce(ctx, "manual")
		if run.Outcome != state.OutcomeApplied {
			for _, p := range run.Problems {
				fmt.Fprintln(s.err, spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message})
			}
			if run.OpenStack != nil {
				for _, e := range run.OpenStack.Failures {
					fmt.Fprintln(s.err, "Error:", e)
				}
			}
			return &exitError{code: 1, err: fmt.Errorf("run %s: %s", run.Outcome, run.Error)}
		}
		line := fmt.Sprintf("Applied revision %s: %d change(s), %d violation(s).", run.Revision, run.Results["applied"], run.Violations)
		if c := run.OpenStack; c != nil {
			line += fmt.Sprintf(" OpenStack: %d applied, %d skipped, %d failed.", c.Results["applied"], c.Results["skipped"], c.Results["failed"])
		}
		fmt.Fprintln(s.out, line)
		return nil
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln, c) }()
	log.Info("controller started", "source", src.String(), "listen", srv.Scheme()+"://"+ln.Addr().String(), "state", f.stateDir)
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

// options checks every flag, reporting all mistakes at once, and reads
// the secrets they name.
func (f *runFlags) options() (controller.Options, *source.Source, error) {
	var errs []error
	if f.git == "" {
		errs = append(errs, errors.New("--git is required"))
	}
	if f.stateDir == "" {
		errs = append(errs, errors.New("--state-dir is required"))
	}
	switch spec.DriftMode(f.drift) {
	case "", spec.DriftReport, spec.DriftCorrect:
	default:
		errs = append(errs, fmt.Errorf("--drift %q: want report or correct", f.drift))
	}
	ref, err := source.ParseRef(f.ref)
	if err != nil {
		errs = append(errs, fmt.Errorf("--ref: %w", err))
	}
	read := func(flag, file string) []byte {
		if file == "" {
			return nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flag, err))
			return nil
		}
		return b
	}
	secret := func(flag, file, env string) string {
		if b := read(flag, file); b != nil {
			return strings.TrimSpace(string(b))
		}
		return os.Getenv(env)
	}
	auth := source.Auth{
		Username:       f.gitUsername,
		Password:       secret("git-password-file", f.gitPassFile, "FPGAOPS_GIT_PASSWORD"),
		Token:          secret("git-token-file", f.gitTokenFile, "FPGAOPS_GIT_TOKEN"),
		SSHKey:         read("ssh-key-file", f.sshKeyFile),
		KnownHostsFile: f.sshKnownHosts,
	}
	if auth.Username == "" {
		auth.Username = os.Getenv("FPGAOPS_GIT_USERNAME")
	}
	webhook := []byte(strings.TrimSpace(string(read("webhook-secret-file", f.webhookSecretFile))))
	admin := []byte(strings.TrimSpace(string(read("admin-token-file", f.adminTokenFile))))
	if f.webhookSecretFile != "" && len(webhook) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("--webhook-secret-file %s: empty", f.webhookSecretFile))
	}
	keyring := read("verify-keyring", f.keyringFile)
	ca := read("git-ca-file", f.gitCAFile)
	cache := f.cacheDir
	if cache == "" && f.stateDir != "" {
		cache = filepath.Join(f.stateDir, "source")
	}
	if err := errors.Join(errs...); err != nil {
		return controller.Options{}, nil, err
	}
	src, err := source.New(source.Config{
		URL: f.git, Ref: ref, Path: f.path, CacheDir: cache, Auth: auth,
		Keyring: string(keyring), CABundle: ca,
	})
	if err != nil {
		return controller.Options{}, nil, err
	}
	return controller.Options{
		Interval: f.interval, Schedule: f.schedule, Jitter: f.jitter,
		RetryInterval: f.retry, MaxRetryInterval: f.maxRetry,
		Drift:         spec.DriftMode(f.drift),
		WebhookSecret: webhook, AdminToken: admin,
	}, src, nil
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
