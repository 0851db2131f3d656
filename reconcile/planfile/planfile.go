// Package planfile reads and writes saved plans: the plan (in its JSON
// format, docs/plan-format.md) together with the desired fleet it was made
// for and the options that shaped it, so that `fpgaops apply PLANFILE`
// applies exactly that plan, the way it was planned, and refuses it when
// the fleet has changed since. It only encodes; applying is the
// executor's job.
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
	// Options are how the fleet was reached and where run state lived
	// when the plan was made; absent in a file written before they were
	// kept.
	Options *Options `json:"options,omitempty"`
}

// Options are the settings, beside the desired state, that shaped a plan:
// how the nodes were reached and where run state (the inventory of what
// converged, which tells drift from intent) was read. Applying the plan
// with others would reach the fleet another way, or journal into another
// directory than the one the plan's drift came from. They name files by
// path, never by content: no key is ever written into a plan.
type Options struct {
	// VMs is the --vms choice of every node's backend.
	VMs string `json:"vms,omitempty"`
	// Insecure allowed plain-HTTP endpoints on loopback.
	Insecure bool `json:"insecure,omitempty"`
	// StateDir is the state directory, absolute.
	StateDir    string        `json:"stateDir,omitempty"`
	Concurrency int           `json:"concurrency,omitempty"`
	NodeTimeout spec.Duration `json:"nodeTimeout,omitempty"`
	// AgentCert, AgentKey and AgentCA are the paths of the controller's
	// client certificate, its key and the agents' CA, absolute.
	AgentCert string `json:"agentCert,omitempty"`
	AgentKey  string `json:"agentKey,omitempty"`
	AgentCA   string `json:"agentCA,omitempty"`
}

// absolute makes the options' paths absolute, so that a plan applies from
// any directory.
func (o Options) absolute() (Options, error) {
	for _, p := range []*string{&o.StateDir, &o.AgentCert, &o.AgentKey, &o.AgentCA} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return o, err
		}
		*p = abs
	}
	return o, nil
}

// Write saves the plan with the options it was made with (nil: none).
func Write(w io.Writer, p *plans.Plan, desired *spec.Fleet, opts *Options) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(File{Plan: p, Repo: desired.Root, Desired: desired, Options: opts})
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
// repository's and the options' absolute paths so that it applies from
// anywhere.
func WriteFile(path string, p *plans.Plan, desired *spec.Fleet, opts Options) error {
	if abs, err := filepath.Abs(desired.Root); err == nil {
		d := *desired
		d.Root = abs
		desired = &d
	}
	opts, err := opts.absolute()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := Write(&buf, p, desired, &opts); err != nil {
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
