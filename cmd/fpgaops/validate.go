package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fpgaops/fpgaops/spec"
)

func newValidateCommand(s streams) *cobra.Command {
	var output string
	var opts spec.Options
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check a fleet repository and report every mistake",
		Long: `Validate loads every YAML file of the fleet repository DIR (default: the
current directory), except hidden files and what DIR/.fpgaopsignore lists,
checks each document against the schema and all of them against each other,
and reads every GBS file the bitstreams name. Symlinks are followed while
they stay inside DIR; files are bounded in size (docs/format.md, Limits).

A valid repository gets a one-line summary. Otherwise every error is printed
as path:line:col: message, with paths relative to DIR, causes first, and the
exit code is 1. Nothing is contacted and nothing is changed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			switch output {
			case "text", "json":
			default:
				return fmt.Errorf("-o %q: want text or json", output)
			}
			fleet, err := spec.LoadWith(dir, opts)
			var list spec.ErrorList
			if err != nil && !errors.As(err, &list) {
				return err
			}
			if output == "json" {
				return writeValidateJSON(s, fleet, list)
			}
			if len(list) > 0 {
				for _, e := range list {
					fmt.Fprintln(s.err, e.Error())
				}
				fmt.Fprintf(s.err, "%s: %d %s\n", dir, len(list), plural(len(list), "error", "errors"))
				return errReported
			}
			fmt.Fprintf(s.out, "%s: valid: %s\n", dir, summary(fleet))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().Int64Var(&opts.MaxYAMLBytes, "max-yaml-bytes", spec.DefaultMaxYAMLBytes, "largest YAML file read")
	cmd.Flags().IntVar(&opts.MaxDocumentValues, "max-document-values", spec.DefaultMaxDocumentValues, "most values in one YAML document, aliases expanded")
	return cmd
}

// summary counts what a fleet declares.
func summary(f *spec.Fleet) string {
	return fmt.Sprintf("%d %s, %d %s, %d %s, %d %s",
		len(f.Nodes), plural(len(f.Nodes), "node", "nodes"),
		f.FPGACount(), plural(f.FPGACount(), "FPGA", "FPGAs"),
		len(f.Bitstreams), plural(len(f.Bitstreams), "bitstream", "bitstreams"),
		len(f.Bindings), plural(len(f.Bindings), "binding", "bindings"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// validateReport is validate's JSON output.
type validateReport struct {
	Valid      bool            `json:"valid"`
	Nodes      int             `json:"nodes"`
	FPGAs      int             `json:"fpgas"`
	Bitstreams int             `json:"bitstreams"`
	Bindings   int             `json:"bindings"`
	Errors     []validateError `json:"errors"`
}

type validateError struct {
	spec.Pos
	Message string `json:"message"`
}

func writeValidateJSON(s streams, f *spec.Fleet, list spec.ErrorList) error {
	r := validateReport{Valid: len(list) == 0, Errors: []validateError{}}
	if f != nil {
		r.Nodes, r.FPGAs, r.Bitstreams, r.Bindings = len(f.Nodes), f.FPGACount(), len(f.Bitstreams), len(f.Bindings)
	}
	for _, e := range list {
		r.Errors = append(r.Errors, validateError{Pos: e.Pos, Message: e.Msg})
	}
	enc := json.NewEncoder(s.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return err
	}
	if !r.Valid {
		return errReported
	}
	return nil
}
