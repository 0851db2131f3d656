package etcdstore

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Shards is how many keys the inventory and the quarantine are each split
// over, by a hash of the card ID. At 10,000 nodes of two cards, an
// inventory shard holds some 80 cards, about 9 KB of JSON (4 KB
// gzipped), so that a run that converges a few cards rewrites a few
// small keys.
const Shards = 256

func shardOf(card string) string {
	h := fnv.New32a()
	h.Write([]byte(card))
	return fmt.Sprintf("%02x", h.Sum32()%Shards)
}

// shardedMap is a map from card ID to V kept in Shards keys below dir.
type shardedMap[V comparable] struct {
	s   *Store
	dir string
}

// read returns every shard's map and the revision it was last changed
// at (absent shards are absent).
func (m shardedMap[V]) read() (map[string]map[string]V, map[string]int64, error) {
	ctx, cancel := m.s.ctx()
	defer cancel()
	resp, err := m.s.c.Get(ctx, m.s.key(m.dir), clientv3.WithPrefix())
	if err != nil {
		return nil, nil, fmt.Errorf("etcd %s: read %s: %w", m.s.opts.Prefix, strings.Trim(m.dir, "/"), err)
	}
	shards := map[string]map[string]V{}
	revs := map[string]int64{}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), m.s.key(m.dir))
		var sh map[string]V
		if err := decode(kv.Value, &sh); err != nil {
			return nil, nil, fmt.Errorf("etcd %s: %s: %w", m.s.opts.Prefix, kv.Key, err)
		}
		shards[name], revs[name] = sh, kv.ModRevision
	}
	return shards, revs, nil
}

// all is the whole map.
func (m shardedMap[V]) all() (map[string]V, error) {
	shards, _, err := m.read()
	if err != nil {
		return nil, err
	}
	out := map[string]V{}
	for _, sh := range shards {
		maps.Copy(out, sh)
	}
	return out, nil
}

// update applies change to the whole map and writes the shards that
// changed, each on the revision it was read at, in as few transactions
// as the request bounds allow. Each transaction is all or nothing; a
// writer that loses the lead between two leaves the first written, which
// only ever records what did happen.
func (m shardedMap[V]) update(what string, change func(map[string]V)) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	shards, revs, err := m.read()
	if err != nil {
		return err
	}
	whole := map[string]V{}
	for _, sh := range shards {
		maps.Copy(whole, sh)
	}
	change(whole)
	next := map[string]map[string]V{}
	for card, v := range whole {
		name := shardOf(card)
		if next[name] == nil {
			next[name] = map[string]V{}
		}
		next[name][card] = v
	}
	var (
		cmps  []clientv3.Cmp
		ops   []clientv3.Op
		bytes int
	)
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		err := m.s.commitIf(what, cmps, ops...)
		cmps, ops, bytes = nil, nil, 0
		return err
	}
	names := slices.Sorted(maps.Keys(shards))
	for name := range next {
		if _, ok := shards[name]; !ok {
			names = append(names, name)
		}
	}
	for _, name := range names {
		if maps.Equal(shards[name], next[name]) {
			continue
		}
		k := m.s.key(m.dir + name)
		var op clientv3.Op
		size := len(k)
		if len(next[name]) == 0 {
			op = clientv3.OpDelete(k)
		} else {
			data, err := encode(next[name])
			if err != nil {
				return fmt.Errorf("etcd %s: %s shard %s: %w", m.s.opts.Prefix, what, name, err)
			}
			op, size = clientv3.OpPut(k, string(data)), size+len(data)
		}
		if len(ops) >= maxTxnOps || bytes+size > maxTxnBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", revs[name]))
		ops, bytes = append(ops, op), bytes+size
	}
	return flush()
}

func (s *Store) inventory() shardedMap[string] { return shardedMap[string]{s, KeyInventory} }

// Applied is the inventory: for each card fpgaops converged, the desired
// digest it converged to; nil when there is none.
func (s *Store) Applied() (map[string]string, error) {
	m, err := s.inventory().all()
	if err != nil || len(m) == 0 {
		return nil, err
	}
	return m, nil
}

// RecordApplied merges the cards a run converged into the inventory.
func (s *Store) RecordApplied(converged map[string]string) error {
	if len(converged) == 0 {
		return nil
	}
	return s.inventory().update("record the inventory", func(m map[string]string) { maps.Copy(m, converged) })
}

// Forget removes cards from the inventory.
func (s *Store) Forget(cards ...string) error {
	if len(cards) == 0 {
		return nil
	}
	return s.inventory().update("forget cards", func(m map[string]string) {
		for _, c := range cards {
			delete(m, c)
		}
	})
}

// quarantineRecord is a quarantine as a shard keeps it: comparable, so
// that unchanged shards are not written.
type quarantineRecord struct {
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
}

func (s *Store) quarantine() shardedMap[quarantineRecord] {
	return shardedMap[quarantineRecord]{s, KeyQuarantine}
}

// Quarantined lists the quarantined cards, by card ID.
func (s *Store) Quarantined() ([]state.Quarantine, error) {
	m, err := s.quarantine().all()
	if err != nil {
		return nil, err
	}
	return quarantineList(m, nil), nil
}

func quarantineList(m map[string]quarantineRecord, only func(string) bool) []state.Quarantine {
	var out []state.Quarantine
	for _, card := range slices.Sorted(maps.Keys(m)) {
		if only == nil || only(card) {
			out = append(out, state.Quarantine{Card: card, Since: m[card].Since, Reason: m[card].Reason})
		}
	}
	return out
}

// Quarantine adds cards to the quarantine; a card already in it keeps its
// first record.
func (s *Store) Quarantine(add ...state.Quarantine) error {
	if len(add) == 0 {
		return nil
	}
	return s.quarantine().update("quarantine cards", func(m map[string]quarantineRecord) {
		for _, q := range add {
			if _, ok := m[q.Card]; !ok {
				m[q.Card] = quarantineRecord{Since: q.Since, Reason: q.Reason}
			}
		}
	})
}

// Release takes cards out of the quarantine, every card when none is
// named, and returns those it released.
func (s *Store) Release(cards ...string) ([]state.Quarantine, error) {
	var released []state.Quarantine
	err := s.quarantine().update("release cards", func(m map[string]quarantineRecord) {
		named := func(card string) bool { return len(cards) == 0 || slices.Contains(cards, card) }
		released = quarantineList(m, named)
		for _, q := range released {
			delete(m, q.Card)
		}
	})
	if err != nil {
		return nil, err
	}
	return released, nil
}
