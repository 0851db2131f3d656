package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
)

// MemoryFile is the file in the agent's state directory that keeps what
// it last read of each card.
const MemoryFile = "cards.json"

// maxMemoryFile bounds the memory file read at start; a node's few cards
// take a few hundred bytes.
const maxMemoryFile = 1 << 20

// Memory is what the agent last read of each card that a VM may later
// hide from it: port 0's AFU ID and the PR interface ID. With a
// directory it is kept in MemoryFile there, replaced atomically on every
// change, so that a restarted agent still knows what the cards its VMs
// hold run.
type Memory struct {
	path string // "" keeps it in the process only

	mu        sync.Mutex
	afu       map[string]string
	iface     map[string]string
	unsaved   bool
	lastSaved []byte
}

// memoryFile is MemoryFile's format.
type memoryFile struct {
	Cards map[string]cardMemory `json:"cards"`
}

type cardMemory struct {
	AFUID       string `json:"afuID,omitempty"`
	InterfaceID string `json:"interfaceID,omitempty"`
}

// OpenMemory reads the memory kept in dir; the first save creates dir.
// An empty dir keeps the memory in the process only. A file that is not
// the agent's is refused, every mistake named, rather than forgotten:
// the operator removes it to start afresh.
func OpenMemory(dir string) (*Memory, error) {
	m := &Memory{afu: map[string]string{}, iface: map[string]string{}}
	if dir == "" {
		return m, nil
	}
	m.path = filepath.Join(dir, MemoryFile)
	data, err := readKept(m.path, maxMemoryFile, "a card memory")
	if err != nil {
		return nil, err
	}
	if data == nil {
		return m, nil
	}
	if err := m.parse(data); err != nil {
		return nil, err
	}
	m.lastSaved = data
	return m, nil
}

func (m *Memory) parse(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var mf memoryFile
	if err := dec.Decode(&mf); err != nil {
		return fmt.Errorf("%s: %w", jsonPos(m.path, data, dec.InputOffset(), err), err)
	}
	var errs []error
	for _, pci := range slices.Sorted(maps.Keys(mf.Cards)) {
		c := mf.Cards[pci]
		if !fpga.IsPCIAddress(pci) {
			errs = append(errs, fmt.Errorf("%s: card %q: want a PCI address such as 0000:5e:00.0", m.path, pci))
			continue
		}
		for _, id := range []struct {
			name, value string
			into        map[string]string
		}{{"afuID", c.AFUID, m.afu}, {"interfaceID", c.InterfaceID, m.iface}} {
			switch {
			case id.value == "":
			case !bitstream.ValidID(id.value):
				errs = append(errs, fmt.Errorf("%s: card %s: %s %q: want 32 hex digits", m.path, pci, id.name, id.value))
			default:
				id.into[pci] = bitstream.NormalizeID(id.value)
			}
		}
	}
	return errors.Join(errs...)
}

// jsonPos names where in a file a JSON error is: file:line:col.
func jsonPos(file string, data []byte, offset int64, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	// The offset counts the bytes read, the last of them the one at fault.
	at := min(max(offset-1, 0), int64(len(data)))
	before := data[:at]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(at) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("%s:%d:%d", file, line, col)
}

// Recall fills in what the host cannot read of devs from the memory
// (RecallAFU, RecallInterface), records what it can, and saves the
// memory when it changed, or when an earlier save failed.
func (m *Memory) Recall(devs []fpga.Device) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := RecallAFU(devs, m.afu)
	i := RecallInterface(devs, m.iface)
	if a || i {
		m.unsaved = true
	}
	if !m.unsaved || m.path == "" {
		return nil
	}
	if err := m.save(); err != nil {
		return err
	}
	m.unsaved = false
	return nil
}

// save replaces the file with the memory: written to a temporary file
// beside it, synced, renamed over it, and the directory synced, so that
// a crash leaves the old memory or the new, never half of one.
func (m *Memory) save() error {
	mf := memoryFile{Cards: map[string]cardMemory{}}
	for pci, id := range m.afu {
		c := mf.Cards[pci]
		c.AFUID = id
		mf.Cards[pci] = c
	}
	for pci, id := range m.iface {
		c := mf.Cards[pci]
		c.InterfaceID = id
		mf.Cards[pci] = c
	}
	data, err := json.MarshalIndent(mf, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if bytes.Equal(data, m.lastSaved) {
		return nil
	}
	if err := writeAtomic(m.path, data); err != nil {
		return fmt.Errorf("card memory: %w", err)
	}
	m.lastSaved = data
	return nil
}

// readKept reads a file the agent keeps, at most max bytes of it; nil
// when there is none yet. A larger file is not what was named.
func readKept(path string, max int, what string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("%s: over %d bytes; not %s", path, max, what)
	}
	return data, nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
