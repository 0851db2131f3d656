// Package ha lets several controllers share one fleet through etcd: they
// elect one leader through a lease-backed election (etcd's concurrency
// package), and only the leader runs (controller.Leadership). The
// leader's term is its election key's create revision, which grows with
// every new leader: it guards every write the leader makes to the shared
// state (etcdstore.Guard) and is the fencing token every request of the
// term carries to the node agents. A leader that is paused or cut off
// past its lease loses the lead as soon as it can tell, and until then
// the store and the agents refuse it.
//
// It makes no decision about the fleet and keeps no state of its own:
// the state is etcdstore's, the runs the controller's.
package ha

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// DefaultLeaseTTL is how long a leader that stops renewing its lease (it
// died, hangs, or cannot reach etcd) keeps the lead.
const DefaultLeaseTTL = 10 * time.Second

// ClientConfig says how to reach etcd.
type ClientConfig struct {
	Endpoints []string
	// CA, Cert and Key are PEM files: the CA that signed the members'
	// certificates, and this client's certificate and key (both or
	// neither).
	CA, Cert, Key string
	// DialTimeout bounds the first connection; 0 means 5s.
	DialTimeout time.Duration
}

// Dial connects to etcd; every mistake in the configuration is reported
// at once.
func Dial(cfg ClientConfig) (*clientv3.Client, error) {
	var errs []error
	if len(cfg.Endpoints) == 0 {
		errs = append(errs, errors.New("--etcd: no endpoint"))
	}
	var conf *tls.Config
	if cfg.CA != "" || cfg.Cert != "" || cfg.Key != "" {
		conf = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CA != "" {
			pem, err := os.ReadFile(cfg.CA)
			pool := x509.NewCertPool()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("--etcd-ca: %w", err))
			case !pool.AppendCertsFromPEM(pem):
				errs = append(errs, fmt.Errorf("--etcd-ca %s: no PEM certificate", cfg.CA))
			}
			conf.RootCAs = pool
		}
		switch {
		case (cfg.Cert == "") != (cfg.Key == ""):
			errs = append(errs, errors.New("--etcd-cert and --etcd-key go together"))
		case cfg.Cert != "":
			cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
			if err != nil {
				errs = append(errs, fmt.Errorf("--etcd-cert, --etcd-key: %w", err))
			}
			conf.Certificates = []tls.Certificate{cert}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: cfg.Endpoints, TLS: conf, DialTimeout: timeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", cfg.Endpoints, err)
	}
	return c, nil
}

// Config configures an Elector.
type Config struct {
	Client *clientv3.Client
	// Prefix is the shared state's key prefix (etcdstore.Options.Prefix).
	Prefix string
	// Identity names this controller to the others: host, pid, address.
	Identity string
	// LeaseTTL is DefaultLeaseTTL when 0; etcd counts it in whole
	// seconds, and raises one below its minimum.
	LeaseTTL time.Duration
	Log      *slog.Logger
}

// Elector is one controller's part in the election. It is safe for
// concurrent use.
type Elector struct {
	cfg Config
	ttl int

	mu      sync.Mutex
	session *concurrency.Session
	el      *concurrency.Election
	term    context.Context // while leading
	end     context.CancelFunc
	status  controller.LeaderStatus
	// leaderKey is the key of the leader this controller last saw.
	leaderKey string

	// life ends with Close: the watch and the leases.
	life    context.Context
	stop    context.CancelFunc
	watched chan struct{}
}

var _ controller.Leadership = (*Elector)(nil)

// leaderValue is what a candidate writes in its election key.
type leaderValue struct {
	Identity string    `json:"identity"`
	Since    time.Time `json:"since"`
}

// New starts watching who leads; Lead campaigns. Close ends both.
func New(cfg Config) (*Elector, error) {
	if cfg.Client == nil || cfg.Identity == "" {
		return nil, errors.New("ha: a client and an identity are required")
	}
	if _, err := etcdstore.New(cfg.Client, etcdstore.Options{Prefix: cfg.Prefix}); err != nil {
		return nil, err
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("lease TTL %v: want 1s or more", cfg.LeaseTTL)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	e := &Elector{cfg: cfg, ttl: int(math.Ceil(cfg.LeaseTTL.Seconds())), watched: make(chan struct{})}
	e.status.Self = cfg.Identity
	e.life, e.stop = context.WithCancel(context.Background())
	go e.watch(e.life)
	return e, nil
}

func (e *Elector) electionPrefix() string { return e.cfg.Prefix + etcdstore.KeyElection }

// Leader is who leads, as this controller knows it now.
func (e *Elector) Leader() controller.LeaderStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.status
	if s.Since != nil {
		t := *s.Since
		s.Since = &t
	}
	return s
}

// Token is the fencing token of the term this controller leads, and
// whether it leads.
func (e *Elector) Token() (uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status.Term, e.status.Leading
}

// Guard is the condition on every write to the shared state: this
// controller's election key still exists as it was created.
func (e *Elector) Guard() (clientv3.Cmp, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.status.Leading {
		leader := e.status.Leader
		if leader == "" {
			leader = "unknown"
		}
		return clientv3.Cmp{}, fmt.Errorf("%w (the leader is %s)", etcdstore.ErrNotLeader, leader)
	}
	return clientv3.Compare(clientv3.CreateRevision(e.el.Key()), "=", e.el.Rev()), nil
}

// Lead campaigns until this controller leads or ctx ends. The context it
// returns ends when the lead is lost (the lease could not be renewed in
// time, or another controller leads) or ctx ends, and carries the term's
// fencing token. The lead itself lasts until it is lost or Close.
func (e *Elector) Lead(ctx context.Context) (context.Context, error) {
	e.mu.Lock()
	if e.status.Leading {
		term := e.term
		e.mu.Unlock()
		return term, nil
	}
	e.mu.Unlock()
	wait := 500 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		term, err := e.campaign(ctx)
		if err == nil {
			return term, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.cfg.Log.Warn("campaign failed; trying again", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, time.Duration(e.ttl)*time.Second)
	}
}

// campaign makes one attempt: a new lease, a key in the election, and
// the wait for every older key to go.
func (e *Elector) campaign(ctx context.Context) (context.Context, error) {
	// The lease lives until the lead is lost or Close gives it up, not
	// until ctx ends: on shutdown, the chains in flight still journal.
	session, err := concurrency.NewSession(e.cfg.Client, concurrency.WithTTL(e.ttl), concurrency.WithContext(e.life))
	if err != nil {
		return nil, fmt.Errorf("etcd lease: %w", err)
	}
	// The campaign ends with the session: a lease that expired while
	// waiting leaves a key that no longer exists.
	cctx, stop := context.WithCancel(ctx)
	go func() {
		select {
		case <-session.Done():
		case <-cctx.Done():
		}
		stop()
	}()
	el := concurrency.NewElection(session, e.electionPrefix())
	value, _ := json.Marshal(leaderValue{Identity: e.cfg.Identity, Since: time.Now().UTC()})
	err = el.Campaign(cctx, string(value))
	stop()
	if err != nil {
		session.Close()
		return nil, fmt.Errorf("etcd election: %w", err)
	}
	select {
	case <-session.Done():
		return nil, errors.New("etcd election: the lease expired during the campaign")
	default:
	}
	since := time.Now().UTC()
	value, _ = json.Marshal(leaderValue{Identity: e.cfg.Identity, Since: since})
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	err = el.Proclaim(pctx, string(value))
	pcancel()
	if err != nil {
		session.Close()
		return nil, fmt.Errorf("etcd election: %w", err)
	}
	token := uint64(el.Rev())
	ended := make(chan struct{})
	term, cancel := context.WithCancel(agent.WithTerm(ctx, token, ended))
	end := func() { cancel(); close(ended) }
	e.mu.Lock()
	e.session, e.el, e.term, e.end = session, el, term, end
	e.status.Leading, e.status.Leader, e.status.Since, e.status.Term = true, e.cfg.Identity, &since, token
	e.status.Elections++
	e.status.Error = ""
	if e.leaderKey != el.Key() {
		e.leaderKey = el.Key()
		e.status.Changes++
	}
	e.mu.Unlock()
	e.cfg.Log.Info("elected leader", "identity", e.cfg.Identity, "term", token)
	go func() {
		select {
		case <-session.Done():
			e.lose(term, "the lease could not be renewed in time")
		case <-term.Done():
		}
	}()
	return term, nil
}

// lose ends the term if it is still the current one, and gives its lease
// up.
func (e *Elector) lose(term context.Context, why string) {
	e.mu.Lock()
	if e.term != term || !e.status.Leading {
		e.mu.Unlock()
		return
	}
	e.status.Leading = false
	e.end()
	session := e.session
	e.term, e.end, e.session, e.el = nil, nil, nil, nil
	e.mu.Unlock()
	e.cfg.Log.Warn("lost the lead", "why", why)
	go session.Close() // revokes the lease, if it still exists
}

// watch keeps the leader up to date: at each change of the election's
// keys, and every second besides, as a watch may miss an outage.
func (e *Elector) watch(ctx context.Context) {
	defer close(e.watched)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var wch clientv3.WatchChan
	for {
		if wch == nil {
			wch = e.cfg.Client.Watch(clientv3.WithRequireLeader(ctx), e.electionPrefix()+"/", clientv3.WithPrefix())
		}
		e.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case _, ok := <-wch:
			if !ok {
				wch = nil
			}
		case <-tick.C:
		}
	}
}

// Term is a leader's term as etcd holds it.
type Term struct {
	// Key is the leader's election key; Token its create revision.
	Key      string
	Token    uint64
	Identity string
	Since    time.Time
}

// CurrentLeader reads who leads the controllers under prefix: the key of
// the election with the lowest create revision; nil when none does.
func CurrentLeader(ctx context.Context, c *clientv3.Client, prefix string) (*Term, error) {
	resp, err := c.Get(ctx, prefix+etcdstore.KeyElection+"/", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: who leads: %w", prefix, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := resp.Kvs[0]
	var v leaderValue
	if json.Unmarshal(kv.Value, &v) != nil {
		v.Identity = string(kv.Value)
	}
	return &Term{Key: string(kv.Key), Token: uint64(kv.CreateRevision), Identity: v.Identity, Since: v.Since}, nil
}

// Status is the term as controller.Status shows it.
func (t *Term) Status() controller.LeaderStatus {
	if t == nil {
		return controller.LeaderStatus{}
	}
	since := t.Since
	return controller.LeaderStatus{Leader: t.Identity, Since: &since, Term: t.Token}
}

// refresh reads who leads.
func (e *Elector) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	t, err := CurrentLeader(rctx, e.cfg.Client, e.cfg.Prefix)
	if err != nil {
		if ctx.Err() == nil {
			e.mu.Lock()
			e.status.Error = err.Error()
			e.mu.Unlock()
		}
		return
	}
	e.mu.Lock()
	e.status.Error = ""
	ls := t.Status()
	e.status.Leader, e.status.Since, e.status.Term = ls.Leader, ls.Since, ls.Term
	if t == nil {
		e.mu.Unlock()
		return
	}
	if t.Key != e.leaderKey {
		e.leaderKey = t.Key
		e.status.Changes++
	}
	// Another controller leads: this one's key is gone.
	deposed := e.status.Leading && e.el != nil && t.Key != e.el.Key()
	term := e.term
	e.mu.Unlock()
	if deposed {
		e.lose(term, "another controller leads: "+t.Identity)
	}
}

// Close gives the lead up at once, if this controller has it, so that
// another takes over without waiting for the lease, and stops watching.
func (e *Elector) Close() error {
	defer func() {
		e.stop()
		<-e.watched
	}()
	e.mu.Lock()
	session, el, leading, end := e.session, e.el, e.status.Leading, e.end
	e.status.Leading = false
	e.session, e.el, e.term, e.end = nil, nil, nil, nil
	e.mu.Unlock()
	if session == nil {
		return nil
	}
	if end != nil {
		end()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if leading {
		err = el.Resign(ctx)
		e.cfg.Log.Info("gave the lead up")
	}
	return errors.Join(err, session.Close())
}
