package execute

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fpgaops/fpgaops/reconcile"
)

// Journal remembers which steps of an unfinished run of a plan completed,
// so that resuming that run does not repeat them. Entries belong to one
// plan (PlanKey) and are used only when a run resumes it: a fresh run, of a
// new plan made from a new observation, starts afresh, since that
// observation already shows what was done, and an old entry must never
// hide a step the fleet needs again. Keys come from Key. Implementations
// must be safe for concurrent use.
type Journal interface {
	// Begin starts the run of a plan, dropping every entry, or with resume
	// set, continues the journal's unfinished run of the same plan.
	Begin(plan string, resume bool) error
	// Done reports whether the step completed in an earlier, unfinished
	// run.
	Done(key string) (bool, error)
	// Record notes that the step completed; it must be durable when it
	// returns.
	Record(key string) error
	// Finish forgets every step: the run converged.
	Finish() error
}

// PlanKey identifies a plan in the journal: the desired state and the
// observation it was made from.
func PlanKey(p *reconcile.Plan) string { return p.DesiredDigest + "/" + p.ObservedFingerprint }

// Key is a change's journal key: its canonical ID and the desired digest
// of its card, so a changed repository never matches an old entry.
func Key(c *reconcile.Change) string { return c.ID + "@" + c.Digest }

// FileJournal keeps the journal as a file in a state directory: a line
// "plan KEY", then the key of each completed step, one per line. Each
// Record appends and syncs, so a killed process loses at most the step it
// was in.
type FileJournal struct {
	mu   sync.Mutex
	path string
	plan string
	done map[string]bool
	f    *os.File
}

const planPrefix = "plan "

// JournalFile is the journal's name in the state directory.
const JournalFile = "journal"

// OpenFileJournal opens (or starts) the journal in dir.
func OpenFileJournal(dir string) (*FileJournal, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &FileJournal{path: filepath.Join(dir, JournalFile), done: map[string]bool{}}
	f, err := os.Open(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("journal: %w", err)
	default:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
			case strings.HasPrefix(line, planPrefix) && j.plan == "":
				j.plan = strings.TrimPrefix(line, planPrefix)
			default:
				j.done[line] = true
			}
		}
		err := sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("journal %s: %w", j.path, err)
		}
	}
	return j, nil
}

// Plan is the key of the plan whose run the journal holds, or "" when it
// holds none: an unfinished run of that plan may be resumed.
func (j *FileJournal) Plan() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.plan
}

func (j *FileJournal) Begin(plan string, resume bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if resume && j.plan == plan {
		return nil
	}
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := f.WriteString(planPrefix + plan + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.f, j.plan, j.done = f, plan, map[string]bool{}
	return nil
}

func (j *FileJournal) Done(key string) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done[key], nil
}

func (j *FileJournal) Record(key string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
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

func (j *FileJournal) Finish() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	j.done, j.plan = map[string]bool{}, ""
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Close releases the file; the journal's content stays.
func (j *FileJournal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// memJournal is the journal when none is given: it lasts one run.
type memJournal struct {
	mu   sync.Mutex
	plan string
	done map[string]bool
}

func (m *memJournal) Begin(plan string, resume bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !resume || m.plan != plan {
		m.plan, m.done = plan, map[string]bool{}
	}
	return nil
}

func (m *memJournal) Done(key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done[key], nil
}

func (m *memJournal) Record(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done[key] = true
	return nil
}

func (m *memJournal) Finish() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = map[string]bool{}
	return nil
}
