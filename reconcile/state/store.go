// Package state keeps what outlives a run, and is its one owner: the
// history of runs (each with its changes, bounded), the last status, the inventory of what fpgaops
// converged (the desired digest each card last converged to, which tells
// drift from new intent), the journal of the run in flight, the
// quarantined cards and the suspended flag. Store is the interface; Local keeps it in a state
// directory.
//
// One process writes a state directory at a time: opening a Local for
// writing takes the directory's lock (flock, which the kernel drops when
// the process ends, so a crash never leaves it behind) and fails at once,
// naming the holder, when another process has it. Readers (`plan`,
// `status`, `history`) take no lock: every file is replaced whole by an
// atomic rename, or, for the journal, only appended to, so a reader sees
// a complete file and never holds up a writer.
package state

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Files of a state directory.
const (
	LockFile      = "lock"
	JournalFile   = "journal"
	InventoryFile = "inventory.json"
	StatusFile    = "status.json"
	SuspendedFile = "suspended"
	RunsDir       = "runs"
	runningFile   = "running.json"
)

// DefaultKeepRuns is how many runs the history keeps when Options.KeepRuns
// is zero.
const DefaultKeepRuns = 1000

// Options tune Open.
type Options struct {
	// ReadOnly opens the store for reading, without the lock: status,
	// history and plan do.
	ReadOnly bool
	// KeepRuns is how many runs the history keeps.
	KeepRuns int
	// Holder says who takes the lock ("fpgaops apply"); it is shown to a
	// writer the lock refuses.
	Holder string
}

// ErrNoState is returned by a read-only Open of a directory that holds no
// store yet.
var ErrNoState = errors.New("no fpgaops state here (has fpgaops applied or run with this --state-dir?)")

// ErrLocked is returned when another process writes the state directory.
var ErrLocked = errors.New("state directory in use by another writer")

// ErrReadOnly is returned by a write to a store opened read-only.
var ErrReadOnly = errors.New("opened read-only")

// Local is the Store of a state directory. It is safe for concurrent use.
type Local struct {
	dir  string
	opts Options
	lock *os.File // nil when read-only

	mu      sync.Mutex
	nextRun uint64
	journal *fileJournal
}

var _ Store = (*Local)(nil)

// Open opens the store in dir. For writing, it creates the directory and
// takes its lock, until Close.
func Open(dir string, opts Options) (*Local, error) {
	if opts.KeepRuns == 0 {
		opts.KeepRuns = DefaultKeepRuns
	}
	s := &Local{dir: dir, opts: opts}
	if opts.ReadOnly {
		if !s.exists() {
			return nil, fmt.Errorf("state dir %s: %w", dir, ErrNoState)
		}
	} else {
		if err := os.MkdirAll(filepath.Join(dir, RunsDir), 0o750); err != nil {
			return nil, fmt.Errorf("state dir %s: %w", dir, err)
		}
		lock, err := acquire(dir, opts.Holder)
		if err != nil {
			return nil, err
		}
		s.lock = lock
	}
	ids, err := s.runIDs()
	if err != nil {
		s.Close()
		return nil, err
	}
	if len(ids) > 0 {
		s.nextRun = ids[len(ids)-1]
	}
	s.journal = &fileJournal{s: s, path: s.path(JournalFile)}
	if err := s.journal.load(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// exists reports whether the directory holds a store.
func (s *Local) exists() bool {
	for _, f := range []string{RunsDir, InventoryFile, StatusFile, JournalFile, LockFile} {
		if _, err := os.Stat(s.path(f)); err == nil {
			return true
		}
	}
	return false
}

// Close gives the lock up; a read-only store has nothing to close.
func (s *Local) Close() error {
	if s == nil || s.lock == nil {
		return nil
	}
	err := s.lock.Close() // closing drops the flock
	s.lock = nil
	return err
}

// Dir is the state directory.
func (s *Local) Dir() string { return s.dir }

func (s *Local) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Local) writable() error {
	if s.lock == nil {
		return fmt.Errorf("state %s: %w", s.dir, ErrReadOnly)
	}
	return nil
}

// writeFile replaces name with data atomically: a reader sees the old
// file or the new one, whole.
func (s *Local) writeFile(name string, data []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	path := s.path(name)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("state %s: %w", path, err)
	}
	return nil
}

// readJSON reads name into v; it reports false when there is no file.
func (s *Local) readJSON(name string, v any) (bool, error) {
	data, err := os.ReadFile(s.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state %s: %w", s.path(name), err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("state %s: %w", s.path(name), err)
	}
	return true, nil
}

func (s *Local) writeJSON(name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.writeFile(name, append(data, '\n'))
}

// runIDs lists the history's run IDs, oldest first.
func (s *Local) runIDs() ([]uint64, error) {
	entries, err := os.ReadDir(s.path(RunsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", s.path(RunsDir), err)
	}
	var ids []uint64
	for _, e := range entries {
		if id, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".json"), 10, 64); err == nil && strings.HasSuffix(e.Name(), ".json") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func runFile(id uint64) string { return filepath.Join(RunsDir, fmt.Sprintf("%012d.json", id)) }

// changesFile holds a run's changes, gzipped: a run's changes repeat
// the same IDs and reasons, and compress about tenfold.
func changesFile(id uint64) string {
	return filepath.Join(RunsDir, fmt.Sprintf("%012d.changes.json.gz", id))
}

// ErrNoRun is returned by Run for a run the history does not hold.
var ErrNoRun = errors.New("not in the history")

// AddRun appends a run to the history, giving it the next ID, drops the
// oldest runs beyond KeepRuns, and clears the run in flight. The run's
// changes, at most MaxRunChanges, go to a file of their own, written
// first, so that a reader who finds the run finds its changes.
func (s *Local) AddRun(r *Run) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	s.nextRun++
	r.ID = s.nextRun
	var omitted int
	r.Changes, omitted = KeepChanges(r.Changes, MaxRunChanges)
	r.ChangesOmitted += omitted
	if len(r.Changes) > 0 {
		if err := s.writeChanges(r.ID, r.Changes); err != nil {
			return err
		}
	} else if err := os.Remove(s.path(changesFile(r.ID))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// left by a writer that died before writing its run
		return fmt.Errorf("state: %w", err)
	}
	head := *r
	head.Changes = nil
	if err := s.writeJSON(runFile(r.ID), &head); err != nil {
		return err
	}
	ids, err := s.runIDs()
	if err != nil {
		return err
	}
	for _, id := range ids[:max(0, len(ids)-s.opts.KeepRuns)] {
		for _, f := range []string{runFile(id), changesFile(id)} {
			if err := os.Remove(s.path(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("state: %w", err)
			}
		}
	}
	if err := os.Remove(s.path(runningFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func (s *Local) writeChanges(id uint64, changes []Change) error {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(changes); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return s.writeFile(changesFile(id), buf.Bytes())
}

// maxChangesFile bounds what Run reads back: MaxRunChanges changes take a
// few MB of JSON at most.
const maxChangesFile = 64 << 20

// Run returns one run of the history with its changes; ErrNoRun when the
// history does not hold it (any more).
func (s *Local) Run(id uint64) (*Run, error) {
	var r Run
	found, err := s.readJSON(runFile(id), &r)
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("run %d: %w (the store keeps the last %d runs)", id, ErrNoRun, s.opts.KeepRuns)
	}
	f, err := os.Open(s.path(changesFile(id)))
	if errors.Is(err, fs.ErrNotExist) {
		return &r, nil // a run without changes
	}
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", id, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("run %d: %s: %w", id, s.path(changesFile(id)), err)
	}
	dec := json.NewDecoder(io.LimitReader(zr, maxChangesFile))
	if err := dec.Decode(&r.Changes); err != nil {
		return nil, fmt.Errorf("run %d: %s: %w", id, s.path(changesFile(id)), err)
	}
	return &r, nil
}

// Runs returns up to limit runs, newest first, without their changes;
// limit 0 means all.
func (s *Local) Runs(limit int) ([]Run, error) {
	ids, err := s.runIDs()
	if err != nil {
		return nil, err
	}
	var runs []Run
	for i := len(ids) - 1; i >= 0 && (limit == 0 || len(runs) < limit); i-- {
		var r Run
		found, err := s.readJSON(runFile(ids[i]), &r)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", ids[i], err)
		}
		if found { // removed by the writer meanwhile: older than kept
			runs = append(runs, r)
		}
	}
	return runs, nil
}

// Running records the run in flight; AddRun clears it. A process that
// dies in between leaves it for Interrupted.
func (s *Local) Running(r *Run) error { return s.writeJSON(runningFile, r) }

// Interrupted returns the run in flight that a process left when it
// died, and forgets it; nil when there is none.
func (s *Local) Interrupted() (*Run, error) {
	var r Run
	found, err := s.readJSON(runningFile, &r)
	if err != nil || !found {
		return nil, err
	}
	if err := s.writable(); err != nil {
		return nil, err
	}
	if err := os.Remove(s.path(runningFile)); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &r, nil
}

// PutStatus saves the controller's status (any JSON value).
func (s *Local) PutStatus(v any) error { return s.writeJSON(StatusFile, v) }

// Status reads the saved status into v; it reports false when none was
// saved yet.
func (s *Local) Status(v any) (bool, error) { return s.readJSON(StatusFile, v) }

// SetSuspended records whether the controller is suspended, so that a
// restart keeps it so.
func (s *Local) SetSuspended(on bool) error {
	if !on {
		if err := s.writable(); err != nil {
			return err
		}
		if err := os.Remove(s.path(SuspendedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
		return nil
	}
	return s.writeFile(SuspendedFile, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"))
}

// Suspended reports whether the controller was suspended.
func (s *Local) Suspended() (bool, error) {
	_, err := os.Stat(s.path(SuspendedFile))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("state: %w", err)
}

// Applied is the inventory: for each card fpgaops converged, the desired
// digest it converged to; nil when there is none.
func (s *Local) Applied() (map[string]string, error) {
	var m map[string]string
	if _, err := s.readJSON(InventoryFile, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// RecordApplied merges the cards a run converged into the inventory.
func (s *Local) RecordApplied(converged map[string]string) error {
	if len(converged) == 0 {
		return nil
	}
	return s.updateInventory(func(m map[string]string) { maps.Copy(m, converged) })
}

// Forget removes cards from the inventory: gone from the fleet, or left
// half-changed by fpgaops, so that the next plan finishes them whatever
// the drift mode.
func (s *Local) Forget(cards ...string) error {
	if len(cards) == 0 {
		return nil
	}
	return s.updateInventory(func(m map[string]string) {
		for _, c := range cards {
			delete(m, c)
		}
	})
}

func (s *Local) updateInventory(change func(map[string]string)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.Applied()
	if err != nil {
		return err
	}
	if m == nil {
		m = map[string]string{}
	}
	change(m)
	return s.writeJSON(InventoryFile, m)
}

// Journal returns the store's journal.
func (s *Local) Journal() Journal { return s.journal }

// fileJournal keeps the journal as a file: a line "plan KEY", then the
// key of each completed step, one a line. Each Record appends and syncs,
// so a killed process loses at most the step it was in.
type fileJournal struct {
	s    *Local
	path string
	mu   sync.Mutex
	plan string
	done map[string]bool
	f    *os.File
}

const planPrefix = "plan "

func (j *fileJournal) load() error {
	j.done = map[string]bool{}
	f, err := os.Open(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == "":
		case strings.HasPrefix(line, planPrefix) && j.plan == "":
			j.plan = strings.TrimPrefix(line, planPrefix)
		default:
			j.done[line] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

func (j *fileJournal) Plan() (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.s.lock == nil { // a reader sees the file as it is now
		fresh := &fileJournal{path: j.path}
		if err := fresh.load(); err != nil {
			return "", err
		}
		return fresh.plan, nil
	}
	return j.plan, nil
}

func (j *fileJournal) Begin(plan string, resume bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.s.writable(); err != nil {
		return err
	}
	if resume && j.plan == plan {
		return nil
	}
	j.close()
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := f.WriteString(planPrefix + plan + "\n"); err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.f, j.plan, j.done = f, plan, map[string]bool{}
	return nil
}

func (j *fileJournal) Done(key string) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done[key], nil
}

func (j *fileJournal) Record(key string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.s.writable(); err != nil {
		return err
	}
	if j.plan == "" {
		return errors.New("journal: Record before Begin")
	}
	if j.f == nil {
		f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		j.f = f
	}
	if _, err := j.f.WriteString(key + "\n"); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.done[key] = true
	return nil
}

func (j *fileJournal) Finish() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.s.writable(); err != nil {
		return err
	}
	j.close()
	j.done, j.plan = map[string]bool{}, ""
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (j *fileJournal) Pending() ([]string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Sorted(maps.Keys(j.done)), nil
}

func (j *fileJournal) close() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}
