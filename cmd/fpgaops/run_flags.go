package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/githost"
	"github.com/fpgaops/fpgaops/reconcile/ha"
	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/fpgaops/fpgaops/reconcile/state/etcdstore"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// runFlags are the controller's flags.
type runFlags struct {
	git, ref, path, cacheDir  string
	interval, jitter          time.Duration
	retry, maxRetry           time.Duration
	schedule, listen          string
	drift                     string
	webhookSecretFile         string
	adminTokenFile            string
	keyringFile               string
	gitUsername, gitPassFile  string
	gitTokenFile, gitCAFile   string
	sshKeyFile, sshKnownHosts string
	once                      bool
	logFormat                 string
	tlsCert, tlsKey           string
	allowPlainHTTP            bool
	notifyConfig, externalURL string
	gitHost, gitHostURL       string
	gitHostRepo, gitHostToken string
	statusContext             string
	engine                    *engineFlags
	etcd                      etcdFlags
	leaseTTL                  time.Duration
	scopeFor                  time.Duration
	// notify is the notifications' configuration, read by options.
	notify *notify.Config
}

// etcdFlags say where the state of controllers that share a fleet is:
// run, status and history take them.
type etcdFlags struct {
	endpoints             []string
	prefix, ca, cert, key string
}

func (f *etcdFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.endpoints, "etcd", nil, "etcd endpoints (comma-separated URLs): the state shared by every controller\nof the fleet, in place of --state-dir")
	fs.StringVar(&f.prefix, "etcd-prefix", "/fpgaops/default", "key prefix of the fleet's state in etcd")
	fs.StringVar(&f.ca, "etcd-ca", "", "CA (PEM) that signed the etcd members' certificates")
	fs.StringVar(&f.cert, "etcd-cert", "", "client certificate (PEM) presented to etcd")
	fs.StringVar(&f.key, "etcd-key", "", "key (PEM) of --etcd-cert")
}

func (f *etcdFlags) on() bool { return len(f.endpoints) > 0 }

// dial connects to etcd.
func (f *etcdFlags) dial() (*clientv3.Client, error) {
	return ha.Dial(ha.ClientConfig{Endpoints: f.endpoints, CA: f.ca, Cert: f.cert, Key: f.key})
}

// reader opens the shared state for reading; close gives the connection
// up.
func (f *etcdFlags) reader() (store *etcdstore.Store, c *clientv3.Client, err error) {
	if c, err = f.dial(); err != nil {
		return nil, nil, err
	}
	if store, err = etcdstore.New(c, etcdstore.Options{Prefix: f.prefix, ReadOnly: true}); err != nil {
		c.Close()
		return nil, nil, err
	}
	return store, c, nil
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
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve --listen over HTTPS with this certificate (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the key (PEM) of --tls-cert")
	fs.BoolVar(&f.allowPlainHTTP, "allow-plain-http", false, "serve plain HTTP off loopback, behind a proxy that terminates TLS")
	fs.StringVar(&f.notifyConfig, "notify-config", "", "file (YAML or JSON) naming where to send notifications: webhooks,\nSlack, Alertmanager (docs/controller.md)")
	fs.StringVar(&f.externalURL, "external-url", "", "the controller's URL as people reach it, for links in notifications\nand commit statuses (default: none)")
	fs.StringVar(&f.gitHost, "git-host", "", "github or gitlab: set commit statuses and plan pull requests there")
	fs.StringVar(&f.gitHostURL, "git-host-url", "", "the git host's API (default https://api.github.com or https://gitlab.com/api/v4)")
	fs.StringVar(&f.gitHostRepo, "git-host-repo", "", "the repository there: OWNER/NAME on GitHub, the project's ID or GROUP/NAME on GitLab")
	fs.StringVar(&f.gitHostToken, "git-host-token-file", "", "file holding the git host's API token (or FPGAOPS_GIT_HOST_TOKEN)")
	fs.StringVar(&f.statusContext, "status-context", controller.DefaultStatusContext, "the commit status's context (GitHub) or name (GitLab); plans use CONTEXT/plan")
	f.engine.register(fs, "where the controller keeps its history, inventory and journal (required\nwithout --etcd; with it, only the repository cache)")
	f.etcd.register(fs)
	fs.DurationVar(&f.scopeFor, "scope-for", 15*time.Minute, "for this long after observing the whole fleet, a new revision's run observes\nand plans only the nodes it changes (0: every run observes the whole fleet)")
	fs.DurationVar(&f.leaseTTL, "etcd-lease-ttl", ha.DefaultLeaseTTL, "with --etcd: how long a leader that stops renewing its lease keeps the lead")
}

// options checks every flag, reporting all mistakes at once, and reads
// the secrets they name.
func (f *runFlags) options() (controller.Options, *source.Source, error) {
	var errs []error
	if f.git == "" {
		errs = append(errs, errors.New("--git is required"))
	}
	switch {
	case f.engine.stateDir == "" && !f.etcd.on():
		errs = append(errs, errors.New("--state-dir is required"))
	case f.engine.stateDir == "" && f.cacheDir == "":
		errs = append(errs, errors.New("--etcd keeps the state, not the repository cache: give --cache-dir or --state-dir"))
	}
	if f.etcd.on() && f.once {
		errs = append(errs, errors.New("--once and --etcd exclude each other: ask the leader for a run (fpgaops reconcile --server)"))
	}
	if f.leaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("--etcd-lease-ttl %v: want 1s or more", f.leaseTTL))
	}
	if f.scopeFor < 0 {
		errs = append(errs, fmt.Errorf("--scope-for %v: want 0 or more", f.scopeFor))
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
	if f.externalURL != "" {
		if u, err := url.Parse(f.externalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--external-url %q: want an http:// or https:// URL", f.externalURL))
		}
	}
	var notifyCfg *notify.Config
	if f.notifyConfig != "" {
		cfg, err := notify.Load(f.notifyConfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("--notify-config: %w", err))
		}
		notifyCfg = &cfg
	}
	var host githost.Host
	if f.gitHost != "" || f.gitHostRepo != "" {
		token := secret("git-host-token-file", f.gitHostToken, "FPGAOPS_GIT_HOST_TOKEN")
		var err error
		switch f.gitHost {
		case "github":
			host, err = githost.NewGitHub(f.gitHostURL, f.gitHostRepo, token, nil)
		case "gitlab":
			host, err = githost.NewGitLab(f.gitHostURL, f.gitHostRepo, token, nil)
		default:
			err = fmt.Errorf("%q: want github or gitlab", f.gitHost)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--git-host: %w", err))
		}
	}
	keyring := read("verify-keyring", f.keyringFile)
	ca := read("git-ca-file", f.gitCAFile)
	cache := f.cacheDir
	if cache == "" && f.engine.stateDir != "" {
		cache = filepath.Join(f.engine.stateDir, "source")
	}
	if err := errors.Join(errs...); err != nil {
		return controller.Options{}, nil, err
	}
	f.notify = notifyCfg
	cfg := source.Config{
		URL: f.git, Ref: ref, Path: f.path, CacheDir: cache, Auth: auth,
		Keyring: string(keyring), CABundle: ca,
	}
	src, err := source.New(cfg)
	if err != nil {
		return controller.Options{}, nil, err
	}
	var heads controller.Heads
	planBranch := ""
	if host != nil {
		// Pull request heads have a cache of their own: the followed
		// ref's is the loop's.
		pulls := cfg
		pulls.CacheDir = cache + "-pulls"
		heads = &controller.HeadSource{Config: pulls}
		if ref.Kind == source.RefBranch {
			planBranch = ref.Name
		}
	}
	return controller.Options{
		GitHost: host, StatusContext: f.statusContext, Heads: heads, PlanBranch: planBranch,
		Interval: f.interval, Schedule: f.schedule, Jitter: f.jitter,
		RetryInterval: f.retry, MaxRetryInterval: f.maxRetry,
		Drift:         spec.DriftMode(f.drift),
		WebhookSecret: webhook, AdminToken: admin,
		ExternalURL: strings.TrimSuffix(f.externalURL, "/"),
	}, src, nil
}
