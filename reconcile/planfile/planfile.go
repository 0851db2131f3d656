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
	"time"

	"github.com/fpgaops/fpgaops/observed"
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

// WindowsStillOpen refuses the saved plan whose disruptive changes the
// maintenance windows no longer allow: it was made when they did.
func (file *File) WindowsStillOpen(obs *observed.Fleet, now time.Time) error {
	again, err := reconcile.NewPlan(file.Desired, obs, now, reconcile.Options{})
	if err != nil {
		return err
	}
	held := map[string]string{}
	for i := range again.Changes {
		if h := again.Changes[i].Held; h != nil && h.Gate == reconcile.GateWindow {
			held[again.Changes[i].ID] = h.Why
		}
	}
	// A VM restart needs an open window too; outside one the re-plan
	// makes the change wait for the VM's restart instead.
	restarts := map[string]bool{}
	for i := range again.Changes {
		if again.Changes[i].Restart == reconcile.RestartVM {
			restarts[again.Changes[i].ID] = true
		}
	}
	for i := range file.Changes {
		c := &file.Changes[i]
		if why, ok := held[c.ID]; ok && c.Runnable() {
			return fmt.Errorf("%s may no longer run: %s; plan again inside a window", c.ID, why)
		}
		if c.Runnable() && c.Restart == reconcile.RestartVM && !restarts[c.ID] {
			return fmt.Errorf("%s may no longer restart %s: no maintenance window allows it now; plan again inside a window", c.ID, c.VM())
		}
	}
	return nil
}
