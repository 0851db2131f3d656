package state

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

var keyJournalPlan = []byte("journal-plan")

// localJournal is the Journal kept in a Local store. Each Record is its own
// durable transaction.
type localJournal struct{ s *Local }

// Journal returns the store's journal.
func (s *Local) Journal() Journal { return &localJournal{s} }

// Begin starts the run of a plan, dropping every entry, or with resume
// set continues the journal's unfinished run of the same plan.
func (j *localJournal) Begin(plan string, resume bool) error {
	return j.s.update(func(tx *bolt.Tx) error {
		meta, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		if resume && string(meta.Get(keyJournalPlan)) == plan {
			return nil
		}
		if err := resetJournal(tx); err != nil {
			return err
		}
		return meta.Put(keyJournalPlan, []byte(plan))
	})
}

func resetJournal(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketJournal); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return err
	}
	_, err := tx.CreateBucket(bucketJournal)
	return err
}

// Plan is the plan the journal's entries belong to, "" when none.
func (j *localJournal) Plan() (string, error) {
	var plan string
	err := j.s.view(func(tx *bolt.Tx) error {
		meta, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		plan = string(meta.Get(keyJournalPlan))
		return nil
	})
	return plan, err
}

// Done reports whether the step completed in an earlier, unfinished run.
func (j *localJournal) Done(key string) (bool, error) {
	var done bool
	err := j.s.view(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketJournal)
		if err != nil {
			return err
		}
		done = b.Get([]byte(key)) != nil
		return nil
	})
	return done, err
}

// Record notes that the step completed.
func (j *localJournal) Record(key string) error {
	return j.s.update(func(tx *bolt.Tx) error {
		meta, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		if meta.Get(keyJournalPlan) == nil {
			return errors.New("journal: Record before Begin")
		}
		b, err := bucket(tx, bucketJournal)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte{1})
	})
}

// Finish forgets every step: the run converged.
func (j *localJournal) Finish() error {
	return j.s.update(func(tx *bolt.Tx) error {
		meta, err := bucket(tx, bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Delete(keyJournalPlan); err != nil {
			return err
		}
		return resetJournal(tx)
	})
}

// Pending lists the journal's keys: the completed steps of an unfinished
// run, for status.
func (j *localJournal) Pending() ([]string, error) {
	var keys []string
	err := j.s.view(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketJournal)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	return keys, err
}
