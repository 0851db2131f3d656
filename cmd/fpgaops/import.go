package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/fpgaops/fpgaops/adopt"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
)

// The files import writes, relative to the repository.
const (
	importedBindings   = "bindings/imported.yaml"
	importedBitstreams = "bitstreams/imported.yaml"
)

func newImportCommand(s streams) *cobra.Command {
	var (
		repo  string
		force bool
	)
	f := newEngineFlags()
	cmd := &cobra.Command{
		Use:   "import --repo DIR [--force]",
		Short: "Adopt a running fleet: write Bindings for what its VMs hold now",
		Long: `Import observes the nodes the repository's Node documents name, as plan
does, and writes a Binding document for every function of their cards that
a VM holds now, into ` + importedBindings + `. Each names the Bitstream
document whose afuID the card runs (the one built for the card's PR
interface, if several). An AFU no document names gets a stub Bitstream in
` + importedBitstreams + `, named fill-in-afu-<AFU ID>, with the AFU and
interface IDs and placeholders for the GBS file and its sha256: validate
fails, saying what to fill in, until it is. Functions a binding already
names are left alone, and what import could not adopt (an unknown node, a
card whose AFU nobody can read, a programmed card no VM holds) is listed.

It never replaces a file without --force; with it, import's own files are
written anew, and what they held counts as not declared (a stub filled in
there is replaced: move it to a file of its own first). The repository is
validated at the end: exit 1 while it is not valid yet (stubs to fill in).
A plan right after an import without stubs shows no changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo == "" {
				return errors.New("--repo is required")
			}
			targets := []string{importedBindings, importedBitstreams}
			if !force {
				if err := refuseExisting(repo, targets); err != nil {
					return err
				}
			}
			aside, err := setAside(repo, targets)
			defer aside.restore()
			if err != nil {
				return err
			}
			desired, err := spec.Load(repo)
			if err != nil {
				return fmt.Errorf("%s does not load; import adds to a valid repository of Node (and Bitstream) documents: %w", repo, err)
			}
			obs, err := f.observe(cmd.Context(), s, desired)
			if err != nil {
				return err
			}
			r := adopt.Adopt(desired, obs)
			bindings, err := r.BindingsYAML()
			if err != nil {
				return err
			}
			stubs, err := r.StubsYAML(importedBindings)
			if err != nil {
				return err
			}
			if err := errors.Join(
				writeImported(repo, importedBindings, bindings, len(r.Bindings) > 0),
				writeImported(repo, importedBitstreams, stubs, len(r.Stubs) > 0),
			); err != nil {
				return err
			}
			aside.drop()
			for _, n := range r.Notes {
				fmt.Fprintln(s.out, "note:", n)
			}
			fmt.Fprintf(s.out, "Imported %d binding(s) into %s", len(r.Bindings), importedBindings)
			if len(r.Stubs) > 0 {
				fmt.Fprintf(s.out, "; %d stub Bitstream(s) to fill in, in %s", len(r.Stubs), importedBitstreams)
			}
			fmt.Fprintln(s.out, ".")
			return validateImported(s, repo)
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "fleet repository directory: the nodes to observe, where the documents go")
	cmd.Flags().BoolVar(&force, "force", false, "replace the files an earlier import wrote")
	f.register(cmd.Flags(), "")
	return cmd
}

// refuseExisting names every file import would replace, all at once.
func refuseExisting(repo string, files []string) error {
	var errs []error
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(repo, f)); err == nil {
			errs = append(errs, fmt.Errorf("%s exists: pass --force to replace it", filepath.Join(repo, f)))
		}
	}
	return errors.Join(errs...)
}

// setAside moves the files an earlier import wrote out of the loader's
// sight (to hidden names beside them), so that what they held counts as
// not declared, and an earlier import's unfilled stubs do not stop this
// one. restore puts them back unless drop has been called once the new
// files are written.
func setAside(repo string, files []string) (*asideFiles, error) {
	a := &asideFiles{}
	for _, f := range files {
		path := filepath.Join(repo, f)
		hidden := filepath.Join(filepath.Dir(path), ".fpgaops-import-old-"+filepath.Base(path))
		switch err := os.Rename(path, hidden); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return a, err
		default:
			a.moved = append(a.moved, [2]string{path, hidden})
		}
	}
	return a, nil
}

type asideFiles struct {
	moved   [][2]string
	dropped bool
}

func (a *asideFiles) restore() {
	if a.dropped {
		return
	}
	for _, m := range a.moved {
		_ = os.Rename(m[1], m[0])
	}
}

func (a *asideFiles) drop() {
	a.dropped = true
	for _, m := range a.moved {
		_ = os.Remove(m[1])
	}
}

// writeImported writes one of import's files, which must not exist: an
// earlier one has been set aside. Nothing to write writes no file.
func writeImported(repo, name string, data []byte, some bool) error {
	if !some {
		return nil
	}
	path := filepath.Join(repo, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: pass --force to replace it", path)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return errors.Join(err, w.Close())
}

// validateImported loads the repository as validate does and prints its
// mistakes (the stubs to fill in, first of all).
func validateImported(s streams, repo string) error {
	fleet, err := spec.Load(repo)
	var list spec.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(s.err, e.Error())
		}
		fmt.Fprintf(s.err, "%s does not validate yet: fill in what the errors above name, then run fpgaops validate %s\n", repo, repo)
		return errReported
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "%s: valid: %s\n", repo, summary(fleet))
	return nil
}
