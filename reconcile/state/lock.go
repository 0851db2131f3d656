package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Holder is who holds a state directory's lock, as it wrote itself into
// the lock file.
type Holder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
	// What names the writer ("fpgaops run", "fpgaops apply").
	What string `json:"what,omitempty"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on %s since %s", h.PID, h.Host, h.Since.UTC().Format(time.RFC3339))
	if h.What != "" {
		s = h.What + ", " + s
	}
	return s
}

// acquire takes the directory's lock without waiting and writes who holds
// it. A lock a dead process held is free: the kernel dropped it.
func acquire(dir, what string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	if err := tryLock(f); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state dir %s: %w (%s)", dir, ErrLocked, holder)
		}
		return nil, fmt.Errorf("state dir %s: lock: %w", dir, err)
	}
	host, _ := os.Hostname()
	data, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Since: time.Now(), What: what})
	if err := f.Truncate(0); err == nil {
		f.WriteAt(append(data, '\n'), 0)
		f.Sync()
	}
	return f, nil
}

// tryLock takes the file's lock, trying again for a moment when it is
// held: a child forked elsewhere in the process shares the descriptor
// until it executes, and a writer that just ended may still be closing.
func tryLock(f *os.File) error {
	var err error
	for range 10 {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// readHolder reads who holds the lock. The holder writes itself just
// after it takes the lock, so a writer refused in between waits a moment
// for the name.
func readHolder(f *os.File) string {
	for range 10 {
		data, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
		var h Holder
		if err == nil && json.Unmarshal(data, &h) == nil && h.PID != 0 {
			return h.String()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "holder unknown"
}

// LockHolder reads who holds, or last held, the directory's lock.
func LockHolder(dir string) (Holder, error) {
	var h Holder
	data, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(data, &h)
}
