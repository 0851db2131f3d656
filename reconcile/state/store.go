// Package state is the controller's embedded store under --state-dir: the
// history of runs, the last status, the inventory of what fpgaops manages
// (the desired digest each card last converged to, which tells drift and
// prune candidates apart from new intent), and the executor's journal. It
// sits on a bbolt file.
//
// The file is opened for each operation and closed after it, so that
// `fpgaops status` and `fpgaops history` can read it while a controller
// runs; a separate lock file, held for the controller's lifetime, keeps two
// controllers from sharing one directory.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DBFile is the bbolt file's name in the state directory.
const DBFile = "fpgaops.db"

var (
	bucketRuns      = []byte("runs")
	bucketMeta      = []byte("meta")
	bucketInventory = []byte("inventory")
	bucketJournal   = []byte("journal")
)

var (
	keyStatus    = []byte("status")
	keySuspended = []byte("suspended")
)

// DefaultKeepRuns is how many runs the history keeps when Options.KeepRuns
// is zero.
const DefaultKeepRuns = 1000

// Options tune Open.
type Options struct {
	// ReadOnly opens the store for reading: status and history do.
	ReadOnly bool
	// Timeout bounds the wait for the file while another process writes
	// it; 0 means five seconds.
	Timeout time.Duration
	// KeepRuns is how many runs the history keeps.
	KeepRuns int
}

// Local is the Store of a state directory, on a bbolt file. It is safe
// for concurrent use.
type Local struct {
	dir  string
	opts Options
	// mu serialises this process's opens: a second open of the same file
	// in one process would wait on its own lock.
	mu sync.Mutex
}

// ErrNoState is returned by a read-only Open of a directory that holds no
// store yet.
var ErrNoState = errors.New("no fpgaops state here (has a controller run with this --state-dir?)")

// Open opens the store in dir, creating it unless read-only.
func Open(dir string, opts Options) (*Local, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.KeepRuns == 0 {
		opts.KeepRuns = DefaultKeepRuns
	}
	s := &Local{dir: dir, opts: opts}
	if opts.ReadOnly {
		if _, err := os.Stat(s.path()); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("state dir %s: %w", dir, ErrNoState)
		}
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRuns, bucketMeta, bucketInventory, bucketJournal} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Dir is the state directory.
func (s *Local) Dir() string { return s.dir }

func (s *Local) path() string { return filepath.Join(s.dir, DBFile) }

func (s *Local) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.path(), 0o640, &bolt.Options{Timeout: s.opts.Timeout, ReadOnly: readOnly})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state %s: busy for more than %s", s.path(), s.opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.path(), err)
	}
	return db, nil
}

func (s *Local) update(fn func(*bolt.Tx) error) error {
	if s.opts.ReadOnly {
		return fmt.Errorf("state %s: opened read-only", s.path())
	}
	return s.with(false, func(db *bolt.DB) error { return db.Update(fn) })
}

func (s *Local) view(fn func(*bolt.Tx) error) error {
	return s.with(s.opts.ReadOnly, func(db *bolt.DB) error { return db.View(fn) })
}

// with opens the file for one transaction and closes it again, so that
// other processes may open it between runs.
func (s *Local) with(readOnly bool, tx func(*bolt.DB) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, err := s.open(readOnly)
	if err != nil {
		return err
	}
	err = tx(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("state %s: %w", s.path(), err)
	}
	return nil
}

// bucket returns the bucket, or an error naming it when the file predates
// it.
func bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %s missing", name)
	}
	return b, nil
}

func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// AddRun appends a run to the history, giving it the next ID, and drops
// the oldest runs beyond KeepRuns.
func (s *Local) AddRun(r *Run) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.ID = id
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put(itob(id), data); err != nil {
			return err
		}
		// Keys are big-endian IDs, so the cursor walks oldest first.
		extra := b.Stats().KeyN + 1 - s.opts.KeepRuns
		c := b.Cursor()
		for k, _ := c.First(); k != nil && extra > 0; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
			extra--
		}
		return nil
	})
}

// Runs returns up to limit runs, newest first; limit 0 means all.
func (s *Local) Runs(limit int) ([]Run, error) {
	var runs []Run
	err := s.view(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && (limit == 0 || len(runs) < limit); k, v = c.Prev() {
			var r Run
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("run %d: %w", binary.BigEndian.Uint64(k), err)
			}
			runs = append(runs, r)
		}
		return nil
	})
	return runs, err
}

// PutStatus saves the controller's status (any JSON value).
func (s *Local) PutStatus(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyStatus, data)
	})
}

// Status reads the saved status into v; it reports false when none was
// saved yet.
func (s *Local) Status(v any) (bool, error) {
	var found bool
	err := s.view(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		data := b.Get(keyStatus)
		if data == nil {
			return nil
		}
		found = true
		return json.Unmarshal(data, v)
	})
	return found, err
}

// SetSuspended records whether the controller is suspended, so that a
// restart keeps it so.
func (s *Local) SetSuspended(on bool) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		if !on {
			return b.Delete(keySuspended)
		}
		return b.Put(keySuspended, []byte("true"))
	})
}

// Suspended reports whether the controller was suspended.
func (s *Local) Suspended() (bool, error) {
	var on bool
	err := s.view(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		on = b.Get(keySuspended) != nil
		return nil
	})
	return on, err
}

// Applied is the inventory: for each card fpgaops converged, the desired
// digest it converged to (reconcile.Options.Applied).
func (s *Local) Applied() (map[string]string, error) {
	m := map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketInventory)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			m[string(k)] = string(v)
			return nil
		})
	})
	if len(m) == 0 {
		return nil, err
	}
	return m, err
}

// RecordApplied merges the cards a run converged into the inventory.
func (s *Local) RecordApplied(converged map[string]string) error {
	if len(converged) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketInventory)
		if err != nil {
			return err
		}
		for k, v := range converged {
			if err := b.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Forget removes cards from the inventory, once they are gone from the
// fleet and nothing of theirs is left to prune.
func (s *Local) Forget(cards ...string) error {
	return s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketInventory)
		if err != nil {
			return err
		}
		for _, k := range cards {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}
