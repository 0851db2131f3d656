// Package planfile reads and writes saved plans: the plan (in its JSON
// format, docs/plan-format.md) together with the desired fleet it was made
// for, so that `fpgaops apply PLANFILE` applies exactly that plan, and
// refuses it when the fleet has changed since. It only encodes; applying
// is the executor's job.
package planfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/spec"
)

// File is a saved plan.
type File struct {
	*plans.Plan
	// Repo is the repository directory the desired state was loaded from:
	// the executor reads bitstream files from it, checking their digests.
	Repo string `json:"repo"`
	// Desired is the desired fleet the plan was made for.
	Desired *spec.Fleet `json:"desired"`
}

// Write saves the plan.
func Write(w io.Writer, p *plans.Plan, desired *spec.Fleet) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(File{Plan: p, Repo: desired.Root, Desired: desired})
}

// Read loads a saved plan and checks that it is whole and of a format this
// fpgaops reads, and that its desired fleet is the one it was planned for.
func Read(r io.Reader) (*File, error) {
	var f File
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("saved plan: %w", err)
	}
	switch {
	case f.Plan == nil || f.Desired == nil:
		return nil, errors.New("saved plan: no plan or no desired state in the file")
	case f.FormatVersion != plans.FormatVersion:
		return nil, fmt.Errorf("saved plan: format version %d, this fpgaops reads %d", f.FormatVersion, plans.FormatVersion)
	case f.Desired.Digest() != f.DesiredDigest:
		return nil, errors.New("saved plan: the desired state in the file does not match its digest")
	}
	f.Desired.Root = f.Repo
	return &f, nil
}

// WriteFile saves the plan to path, readable by its owner only, with the
// repository's absolute path so that it applies from anywhere.
func WriteFile(path string, p *plans.Plan, desired *spec.Fleet) error {
	if abs, err := filepath.Abs(desired.Root); err == nil {
		d := *desired
		d.Root = abs
		desired = &d
	}
	var buf bytes.Buffer
	if err := Write(&buf, p, desired); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

// ReadFile reads a saved plan from path; errors name the file.
func ReadFile(path string) (*File, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := Read(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
