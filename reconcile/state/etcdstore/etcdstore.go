// Package etcdstore keeps fpgaops's state (state.Store) in etcd, for
// controllers that share one fleet: the history of runs, the last
// status, the inventory of what converged, the journal, the quarantine,
// the suspended flag and the run in flight, under one key prefix.
//
// Only the leader writes, and every write is a transaction conditional
// on the Guard (the leader's election key still existing at the revision
// it was created), so a controller that lost the lead, however long it
// was paused, cannot change the state: its write fails with
// ErrNotLeader. Readers (followers, `fpgaops status --etcd`) take no
// lock.
//
// Every value is bounded to stay well under etcd's request limit
// (1.5 MiB by default): values over a few KiB are gzipped, the inventory
// and the quarantine are split over a fixed number of shards written
// only when they change, and the history keeps the newest KeepRuns runs,
// the older deleted in the transaction that adds a run.
// docs/controller.md gives the sizes at 10,000 nodes.
package etcdstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Keys below the prefix.
const (
	KeyStatus = "/status"
	// KeyRollout is the policy's rollout, KeyRolloutControl the
	// operator's say about it.
	KeyRollout        = "/rollout"
	KeyRolloutControl = "/rollout-control"
	KeySuspended      = "/suspended"
	KeyRunning        = "/running"
	KeyRuns           = "/runs/"
	// KeyRunChanges holds each run's changes beside it: reading the
	// history reads no changes.
	KeyRunChanges = "/run-changes/"
	KeyInventory  = "/inventory/"
	KeyQuarantine = "/quarantine/"
	KeyJournal    = "/journal/"
	keyPlan       = KeyJournal + "plan"
	keyDone       = KeyJournal + "done/"
	// KeyElection is where the controllers campaign (reconcile/ha).
	KeyElection = "/election"
)

// Limits.
const (
	// MaxValueBytes bounds one value as written, after compression.
	MaxValueBytes = 1 << 20
	// maxTxnBytes and maxTxnOps bound a transaction: etcd refuses
	// requests over 1.5 MiB and, by default, over 128 operations.
	maxTxnBytes = 1 << 20
	maxTxnOps   = 100
	// gzipOver is the size from which a value is gzipped.
	gzipOver = 4 << 10
	// maxDecoded bounds a gzipped value once decompressed.
	maxDecoded = 64 << 20
	// runsPage is how many runs one read of the history fetches.
	runsPage = 50
)

// DefaultTimeout bounds each request to etcd.
const DefaultTimeout = 10 * time.Second

// ErrNotLeader is returned by a write of a controller that does not lead.
var ErrNotLeader = errors.New("this controller does not lead")

// Guard is the condition every write is made on: that the writer still
// leads. It returns ErrNotLeader (wrapped) when the writer knows it does
// not.
type Guard func() (clientv3.Cmp, error)

// Options configure a Store.
type Options struct {
	// Prefix holds every key, such as /fpgaops/dc1; required.
	Prefix string
	// Guard makes every write conditional; nil writes unconditionally
	// (one writer, tests).
	Guard Guard
	// ReadOnly refuses every write: status and history.
	ReadOnly bool
	// KeepRuns is how many runs the history keeps; 0 means
	// state.DefaultKeepRuns.
	KeepRuns int
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Store is a state.Store in etcd. It is safe for concurrent use.
type Store struct {
	c    *clientv3.Client
	opts Options

	mu      sync.Mutex // serialises read-modify-write updates
	journal *journal
}

var _ state.Store = (*Store)(nil)

// New returns the store under opts.Prefix; it does not call etcd.
func New(c *clientv3.Client, opts Options) (*Store, error) {
	if opts.Prefix == "" || opts.Prefix[0] != '/' {
		return nil, fmt.Errorf("etcd prefix %q: want an absolute key prefix such as /fpgaops/dc1", opts.Prefix)
	}
	if opts.KeepRuns <= 0 {
		opts.KeepRuns = state.DefaultKeepRuns
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	s := &Store{c: c, opts: opts}
	s.journal = &journal{s: s, done: map[string]bool{}}
	return s, nil
}

// Prefix is the store's key prefix.
func (s *Store) Prefix() string { return s.opts.Prefix }

func (s *Store) key(k string) string { return s.opts.Prefix + k }

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Timeout)
}

// commit runs ops in one transaction, on the guard.
func (s *Store) commit(what string, ops ...clientv3.Op) error {
	return s.commitIf(what, nil, ops...)
}

// commitIf runs ops in one transaction on the guard and cmps; a failed
// comparison is ErrNotLeader when the guard failed, else a conflict.
func (s *Store) commitIf(what string, cmps []clientv3.Cmp, ops ...clientv3.Op) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("etcd %s: %s: %w", s.opts.Prefix, what, state.ErrReadOnly)
	}
	all := cmps
	guarded := s.opts.Guard != nil
	if guarded {
		g, err := s.opts.Guard()
		if err != nil {
			return fmt.Errorf("etcd %s: %s: %w", s.opts.Prefix, what, err)
		}
		all = append([]clientv3.Cmp{g}, cmps...)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	txn := s.c.Txn(ctx).If(all...).Then(ops...)
	if guarded && len(cmps) > 0 {
		// Tell which comparison failed: read the guard's key back.
		txn = txn.Else(clientv3.OpTxn(all[:1], nil, nil))
	}
	resp, err := txn.Commit()
	if err != nil {
		return fmt.Errorf("etcd %s: %s: %w", s.opts.Prefix, what, err)
	}
	if resp.Succeeded {
		return nil
	}
	if guarded && len(cmps) > 0 && len(resp.Responses) == 1 {
		if inner := resp.Responses[0].GetResponseTxn(); inner != nil && inner.Succeeded {
			return fmt.Errorf("etcd %s: %s: changed by another writer meanwhile", s.opts.Prefix, what)
		}
	}
	if guarded {
		return fmt.Errorf("etcd %s: %s: %w (its election key is gone: the lease expired)", s.opts.Prefix, what, ErrNotLeader)
	}
	return fmt.Errorf("etcd %s: %s: changed by another writer meanwhile", s.opts.Prefix, what)
}

// get reads one key; found is false when it does not exist.
func (s *Store) get(k string, v any) (bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.c.Get(ctx, s.key(k))
	if err != nil {
		return false, fmt.Errorf("etcd %s: read %s: %w", s.opts.Prefix, k, err)
	}
	if len(resp.Kvs) == 0 {
		return false, nil
	}
	if err := decode(resp.Kvs[0].Value, v); err != nil {
		return false, fmt.Errorf("etcd %s: %s: %w", s.opts.Prefix, k, err)
	}
	return true, nil
}

// put writes one key on the guard.
func (s *Store) put(what, k string, v any) error {
	data, err := encode(v)
	if err != nil {
		return fmt.Errorf("etcd %s: %s: %w", s.opts.Prefix, what, err)
	}
	return s.commit(what, clientv3.OpPut(s.key(k), string(data)))
}

// encode is v's JSON, gzipped when over gzipOver; it refuses a value over
// MaxValueBytes.
func encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(data) > gzipOver {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		data = b.Bytes()
	}
	if len(data) > MaxValueBytes {
		return nil, fmt.Errorf("value of %d bytes (compressed) is over the limit of %d", len(data), MaxValueBytes)
	}
	return data, nil
}

// decode reads a value encode wrote: JSON, or gzipped JSON (a gzip
// stream starts with 0x1f 0x8b, JSON never does).
func decode(data []byte, v any) error {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return err
		}
		plain, err := io.ReadAll(io.LimitReader(zr, maxDecoded+1))
		if err != nil {
			return err
		}
		if len(plain) > maxDecoded {
			return fmt.Errorf("value over %d bytes once decompressed", maxDecoded)
		}
		data = plain
	}
	return json.Unmarshal(data, v)
}

// PutStatus saves the controller's status.
func (s *Store) PutStatus(v any) error { return s.put("status", KeyStatus, v) }

// Status reads the saved status into v; false when none was saved.
func (s *Store) Status(v any) (bool, error) { return s.get(KeyStatus, v) }

// Rollout is the rollout in progress or last finished; nil when there
// has been none.
func (s *Store) Rollout() (*rollout.State, error) {
	var r rollout.State
	ok, err := s.get(KeyRollout, &r)
	if !ok || err != nil {
		return nil, err
	}
	return &r, nil
}

// PutRollout saves the rollout's state.
func (s *Store) PutRollout(r *rollout.State) error { return s.put("rollout", KeyRollout, r) }

// RolloutControl is the operator's say; the zero value when there is
// none.
func (s *Store) RolloutControl() (state.RolloutControl, error) {
	var c state.RolloutControl
	_, err := s.get(KeyRolloutControl, &c)
	return c, err
}

// SetRolloutControl saves the operator's say.
func (s *Store) SetRolloutControl(c state.RolloutControl) error {
	return s.put("rollout control", KeyRolloutControl, c)
}

// SetSuspended records whether the controller is suspended.
func (s *Store) SetSuspended(on bool) error {
	if !on {
		return s.commit("resume", clientv3.OpDelete(s.key(KeySuspended)))
	}
	return s.put("suspend", KeySuspended, time.Now().UTC())
}

// Suspended reports whether the controller was suspended.
func (s *Store) Suspended() (bool, error) {
	var at time.Time
	return s.get(KeySuspended, &at)
}

// Running records the run in flight; AddRun clears it.
func (s *Store) Running(r *state.Run) error { return s.put("run in flight", KeyRunning, r) }

// Interrupted returns the run in flight that a leader left when it died
// or lost the lead, and forgets it; nil when there is none.
func (s *Store) Interrupted() (*state.Run, error) {
	var r state.Run
	found, err := s.get(KeyRunning, &r)
	if err != nil || !found {
		return nil, err
	}
	if err := s.commit("forget the run in flight", clientv3.OpDelete(s.key(KeyRunning))); err != nil {
		return nil, err
	}
	return &r, nil
}

// Journal is the executor's journal.
func (s *Store) Journal() state.Journal { return s.journal }
