package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// StateFile is the bbolt file in the sim's state directory.
const StateFile = "sim.db"

// stateFormat is the version of what StateFile holds.
const stateFormat = "1"

var (
	bucketMeta  = []byte("meta")
	bucketNodes = []byte("nodes")
	keyFormat   = []byte("format")
)

// store keeps the nodes' state in a bbolt file: one small record per node
// that has changed, written in a transaction of its own as the change
// happens, so a restart, or a kill of the process, loses nothing and
// never finds half a change. It does not sync to disk after each
// transaction: the sim is a test bench, and a power cut of the machine
// may lose its last changes.
type store struct {
	db *bolt.DB
}

// nodeRecord is what a node keeps across restarts.
type nodeRecord struct {
	Cards []cardRecord `json:"cards"`
	VMs   []vmState    `json:"vms,omitempty"`
	// Seen is the agent's memory of AFU IDs (agent.RecallAFU).
	Seen  map[string]string `json:"seen,omitempty"`
	Stats counters          `json:"stats"`
}

type cardRecord struct {
	PCI      string `json:"pci"`
	AFUID    string `json:"afuID"`
	NumVFs   int    `json:"numVFs,omitempty"`
	Released bool   `json:"released,omitempty"`
	PFVFIO   bool   `json:"pfVFIO,omitempty"`
	VFVFIO   uint64 `json:"vfVFIO,omitempty"`
	Busy     bool   `json:"busy,omitempty"`
}

// openStore opens (creating) the state file in dir. A second sim on the
// same directory is refused rather than waited for.
func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nodes")); err == nil {
		return nil, fmt.Errorf("state dir %s holds the per-node fake sysfs trees of an earlier version: remove it or choose another", dir)
	}
	path := filepath.Join(dir, StateFile)
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state dir %s: in use by another simulated fleet", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch f := meta.Get(keyFormat); {
		case f == nil:
			if err := meta.Put(keyFormat, []byte(stateFormat)); err != nil {
				return err
			}
		case string(f) != stateFormat:
			return fmt.Errorf("%s: format %q, this fpgaops reads %q", StateFile, f, stateFormat)
		}
		_, err = tx.CreateBucketIfNotExists(bucketNodes)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	return &store{db: db}, nil
}

// get reads a node's record; ok is false for a node never saved.
func (st *store) get(name string) (rec nodeRecord, ok bool, err error) {
	err = st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNodes).Get([]byte(name))
		if b == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(b, &rec)
	})
	if err != nil {
		return nodeRecord{}, false, fmt.Errorf("%s: node %s: %w", StateFile, name, err)
	}
	return rec, ok, nil
}

func (st *store) put(name string, rec *nodeRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).Put([]byte(name), b)
	})
}

func (st *store) close() error { return st.db.Close() }

// record is the node's state to save. Callers hold n.mu.
func (n *node) record() *nodeRecord {
	rec := &nodeRecord{Cards: make([]cardRecord, len(n.cards)), VMs: n.vms, Seen: n.seen, Stats: n.stats}
	for i := range n.cards {
		c := &n.cards[i]
		rec.Cards[i] = cardRecord{PCI: c.pci, AFUID: c.afu, NumVFs: c.numVFs, Released: c.released,
			PFVFIO: c.pfVFIO, VFVFIO: c.vfVFIO, Busy: c.busy}
	}
	return rec
}

// restore applies a saved record to a node just built from its spec:
// cards it still declares take their saved state, VMs their saved
// functions; VMs the bindings name anew are added as they start.
func (n *node) restore(rec nodeRecord) {
	for _, r := range rec.Cards {
		c := n.card(r.PCI)
		if c == nil {
			continue // no longer declared: gone from the node
		}
		c.afu, c.numVFs, c.released = r.AFUID, min(r.NumVFs, c.totalVFs()), r.Released
		c.pfVFIO, c.vfVFIO, c.busy = r.PFVFIO, r.VFVFIO, r.Busy
	}
	fresh := n.vms
	n.vms = rec.VMs
	for _, v := range fresh {
		if !hasVM(n.vms, v.Name) {
			n.vms = append(n.vms, v)
		}
	}
	sortVMs(n.vms)
	n.seen, n.stats = rec.Seen, rec.Stats
}

// save writes the node's state when the sim has a state directory.
// Callers hold n.mu.
func (n *node) save(s *Sim) error {
	if s.store == nil {
		return nil
	}
	if err := s.store.put(n.spec.Name, n.record()); err != nil {
		return fmt.Errorf("node %s: save state: %w", n.spec.Name, err)
	}
	return nil
}

// saveQuiet saves after a refusal; the refusal is what the caller
// reports.
func (n *node) saveQuiet(s *Sim) { _ = n.save(s) }
