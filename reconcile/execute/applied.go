package execute

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
)

// AppliedFile is where the state directory keeps, per card, the desired
// digest the card last converged to (reconcile.Options.Applied): what
// tells drift from a changed repository.
const AppliedFile = "applied.json"

// ReadApplied reads the applied digests; a missing file is no history.
func ReadApplied(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, AppliedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("applied digests: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("applied digests %s: %w", filepath.Join(dir, AppliedFile), err)
	}
	return m, nil
}

// RecordApplied merges the cards a run converged into the applied
// digests, replacing the file atomically.
func RecordApplied(dir string, converged map[string]string) error {
	m, err := ReadApplied(dir)
	if err != nil {
		return err
	}
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, converged)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("applied digests: %w", err)
	}
	tmp, err := os.CreateTemp(dir, AppliedFile+".*")
	if err != nil {
		return fmt.Errorf("applied digests: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("applied digests: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("applied digests: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("applied digests: %w", err)
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, AppliedFile))
}
