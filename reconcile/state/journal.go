package state

import (
	bolt "go.etcd.io/bbolt"
)

// Journal is the executor's journal (execute.Journal) kept in the store:
// the steps of an unfinished run that completed, so that the next run does
// not repeat them. Each Record is its own durable transaction.
type Journal struct{ s *Store }

// Journal returns the store's journal.
func (s *Store) Journal() *Journal { return &Journal{s} }

// Done reports whether the step completed in an earlier, unfinished run.
func (j *Journal) Done(key string) (bool, error) {
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
func (j *Journal) Record(key string) error {
	return j.s.update(func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketJournal)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte{1})
	})
}

// Finish forgets every step: the run converged.
func (j *Journal) Finish() error {
	return j.s.update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketJournal); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketJournal)
		return err
	})
}

// Pending lists the journal's keys: the completed steps of an unfinished
// run, for status.
func (j *Journal) Pending() ([]string, error) {
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
