package etcdstore

import (
	"fmt"
	"strconv"

	"github.com/fpgaops/fpgaops/reconcile/state"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// runKey is a run's key: its ID with leading zeros, so that keys sort as
// IDs do.
func runKey(id uint64) string { return fmt.Sprintf("%s%020d", KeyRuns, id) }

// changesKey is the key of a run's changes.
func changesKey(id uint64) string { return fmt.Sprintf("%s%020d", KeyRunChanges, id) }

// lastRunID is the ID of the newest run in the history, 0 when none.
func (s *Store) lastRunID() (uint64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.c.Get(ctx, s.key(KeyRuns), append(clientv3.WithLastKey(), clientv3.WithPrefix())...)
	if err != nil {
		return 0, fmt.Errorf("etcd %s: read the history: %w", s.opts.Prefix, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	k := string(resp.Kvs[0].Key)
	id, err := strconv.ParseUint(k[len(s.key(KeyRuns)):], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("etcd %s: history key %q: %w", s.opts.Prefix, k, err)
	}
	return id, nil
}

// AddRun appends a run to the history, gives it its ID and clears the
// run in flight, in one transaction that also deletes the runs past
// KeepRuns.
func (s *Store) AddRun(r *state.Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, err := s.lastRunID()
	if err != nil {
		return err
	}
	r.ID = last + 1
	head := *r
	head.Changes = nil
	var changes []byte
	if len(r.Changes) > 0 {
		// Changes that do not fit one transaction beside the run are
		// counted, not kept: the run itself is always recorded.
		changes, err = encode(r.Changes)
		if err != nil || len(changes) > maxTxnBytes/2 {
			changes = nil
			head.ChangesOmitted += len(r.Changes)
		}
	}
	data, err := encode(&head)
	if err != nil {
		return fmt.Errorf("etcd %s: run %d: %w", s.opts.Prefix, r.ID, err)
	}
	k := s.key(runKey(r.ID))
	ops := []clientv3.Op{clientv3.OpPut(k, string(data)), clientv3.OpDelete(s.key(KeyRunning))}
	if changes != nil {
		ops = append(ops, clientv3.OpPut(s.key(changesKey(r.ID)), string(changes)))
	}
	if keep := uint64(s.opts.KeepRuns); r.ID > keep {
		ops = append(ops, clientv3.OpDelete(s.key(runKey(0)), clientv3.WithRange(s.key(runKey(r.ID-keep+1)))),
			clientv3.OpDelete(s.key(changesKey(0)), clientv3.WithRange(s.key(changesKey(r.ID-keep+1)))))
	}
	// The key must be new: a run of another writer never is overwritten.
	fresh := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	return s.commitIf(fmt.Sprintf("record run %d", r.ID), []clientv3.Cmp{fresh}, ops...)
}

// Run returns one run of the history with its changes; state.ErrNoRun
// when the history does not hold it (any more).
func (s *Store) Run(id uint64) (*state.Run, error) {
	var r state.Run
	found, err := s.get(runKey(id), &r)
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("run %d: %w (the store keeps the last %d runs)", id, state.ErrNoRun, s.opts.KeepRuns)
	}
	if _, err := s.get(changesKey(id), &r.Changes); err != nil {
		return nil, fmt.Errorf("run %d: changes: %w", id, err)
	}
	return &r, nil
}

// Runs returns up to limit runs, newest first; 0 means all. It reads
// them a page at a time, so that no answer is large.
func (s *Store) Runs(limit int) ([]state.Run, error) {
	var runs []state.Run
	end := clientv3.GetPrefixRangeEnd(s.key(KeyRuns))
	for limit == 0 || len(runs) < limit {
		page := runsPage
		if limit > 0 {
			page = min(page, limit-len(runs))
		}
		ctx, cancel := s.ctx()
		resp, err := s.c.Get(ctx, s.key(KeyRuns), clientv3.WithRange(end),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(page)))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("etcd %s: read the history: %w", s.opts.Prefix, err)
		}
		for _, kv := range resp.Kvs {
			var r state.Run
			if err := decode(kv.Value, &r); err != nil {
				return nil, fmt.Errorf("etcd %s: %s: %w", s.opts.Prefix, kv.Key, err)
			}
			runs = append(runs, r)
			end = string(kv.Key) // the next page ends before the oldest read
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
	}
	return runs, nil
}
