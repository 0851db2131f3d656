package etcdstore

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// journal keeps the executor's journal as a key for the plan and one key
// per completed step, so that each Record is one small transaction. The
// completed steps are read once, by Begin, and then kept in memory: only
// the leader writes them.
type journal struct {
	s    *Store
	mu   sync.Mutex
	plan string
	done map[string]bool
}

func (j *journal) Plan() (string, error) {
	var plan string
	if _, err := j.s.get(keyPlan, &plan); err != nil {
		return "", err
	}
	return plan, nil
}

func (j *journal) Begin(plan string, resume bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if resume {
		held, err := j.Plan()
		if err != nil {
			return err
		}
		if held == plan {
			done, err := j.read()
			if err != nil {
				return err
			}
			j.plan, j.done = plan, done
			return nil
		}
	}
	data, err := encode(plan)
	if err != nil {
		return err
	}
	err = j.s.commit("begin the journal",
		clientv3.OpDelete(j.s.key(keyDone), clientv3.WithPrefix()),
		clientv3.OpPut(j.s.key(keyPlan), string(data)))
	if err != nil {
		return err
	}
	j.plan, j.done = plan, map[string]bool{}
	return nil
}

// read lists the completed steps in etcd, a page at a time.
func (j *journal) read() (map[string]bool, error) {
	done := map[string]bool{}
	from, end := j.s.key(keyDone), clientv3.GetPrefixRangeEnd(j.s.key(keyDone))
	for {
		ctx, cancel := j.s.ctx()
		resp, err := j.s.c.Get(ctx, from, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(1000))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("etcd %s: read the journal: %w", j.s.opts.Prefix, err)
		}
		for _, kv := range resp.Kvs {
			done[strings.TrimPrefix(string(kv.Key), j.s.key(keyDone))] = true
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return done, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Done reports whether the step completed in an earlier, unfinished run.
// A writer that knows it lost the lead gets an error: the executor then
// takes no further step.
func (j *journal) Done(key string) (bool, error) {
	if g := j.s.opts.Guard; g != nil {
		if _, err := g(); err != nil {
			return false, fmt.Errorf("journal: %w", err)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done[key], nil
}

func (j *journal) Record(key string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.plan == "" {
		return errors.New("journal: Record before Begin")
	}
	if err := j.s.commit("journal "+key, clientv3.OpPut(j.s.key(keyDone+key), "")); err != nil {
		return err
	}
	j.done[key] = true
	return nil
}

func (j *journal) Finish() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.s.commit("finish the journal", clientv3.OpDelete(j.s.key(KeyJournal), clientv3.WithPrefix())); err != nil {
		return err
	}
	j.plan, j.done = "", map[string]bool{}
	return nil
}

func (j *journal) Pending() ([]string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Sorted(maps.Keys(j.done)), nil
}
