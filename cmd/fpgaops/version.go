package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit are set by the build (the Makefile passes
// -ldflags "-X main.version=... -X main.commit=..." from git describe);
// a plain `go build` leaves them empty. They are link-time constants,
// never written at run time.
var version, commit string

// buildInfo is what `fpgaops version` reports.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// Modified is set when the commit's tree had uncommitted changes.
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// currentBuild describes this binary.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, bi)
}

// describeBuild prefers what the build set; without it the version is
// "devel" and the commit is the module's VCS stamp, when go build
// recorded one.
func describeBuild(ver, rev string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: ver, Commit: rev, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if b.Version == "" {
		b.Version = "devel"
	}
	if bi == nil {
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.modified":
			if rev == "" {
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

func (b buildInfo) write(w io.Writer) {
	c := b.Commit
	switch {
	case c == "":
		c = "unknown"
	case b.Modified:
		c += " (modified)"
	}
	fmt.Fprintf(w, "fpgaops %s\ncommit: %s\ngo: %s %s\n", b.Version, c, b.GoVersion, b.Platform)
}

func newVersionCommand(s streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o json]",
		Short: "Print fpgaops's version, commit and Go version",
		Long: `Version prints the version this binary was built as (git describe, set by
'make build'; "devel" for a plain 'go build'), the commit it was built from,
and the Go version and platform. 'fpgaops --version' prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			b := currentBuild()
			if output == "json" {
				return writeIndented(s.out, b)
			}
			b.write(s.out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
