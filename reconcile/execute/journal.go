package execute

import (
	"sync"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
)

// PlanKey identifies a plan in the journal: the desired state and the
// observation it was made from.
func PlanKey(p *plans.Plan) string { return p.DesiredDigest + "/" + p.ObservedFingerprint }

// Key is a change's journal key: its canonical ID and the desired digest
// of its card, so a changed repository never matches an old entry.
func Key(c *plans.Change) string { return c.ID + "@" + c.Digest }

// memJournal is the journal when none is given: it lasts one run.
type memJournal struct {
	mu   sync.Mutex
	plan string
	done map[string]bool
}

var _ state.Journal = (*memJournal)(nil)

func (m *memJournal) Begin(plan string, resume bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !resume || m.plan != plan {
		m.plan, m.done = plan, map[string]bool{}
	}
	return nil
}

func (m *memJournal) Plan() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.plan, nil
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
	m.plan, m.done = "", map[string]bool{}
	return nil
}

func (m *memJournal) Pending() ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.done))
	for k := range m.done {
		keys = append(keys, k)
	}
	return keys, nil
}
