// Package planfile reads and writes saved plans: the plan (in its JSON
// format, docs/plan-format.md) together with the desired fleet it was made
// for, so that `fpgaops apply PLANFILE` applies exactly that plan, and
// refuses it when the fleet has changed since. It only encodes; applying
// is the executor's job.
package planfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/spec"
)

// File is a saved plan.
type File struct {
	*reconcile.Plan
	// Repo is the repository directory the desired state was loaded from:
	// the executor reads bitstream files from it, checking their digests.
	Repo string `json:"repo"`
	// Desired is the desired fleet the plan was made for.
	Desired *spec.Fleet `json:"desired"`
}

// Write saves the plan.
func Write(w io.Writer, p *reconcile.Plan, desired *spec.Fleet) error {
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
	case f.FormatVersion != reconcile.FormatVersion:
		return nil, fmt.Errorf("saved plan: format version %d, this fpgaops reads %d", f.FormatVersion, reconcile.FormatVersion)
	case reconcile.DesiredDigest(f.Desired) != f.DesiredDigest:
		return nil, errors.New("saved plan: the desired state in the file does not match its digest")
	}
	f.Desired.Root = f.Repo
	return &f, nil
}
