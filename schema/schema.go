// Package schema holds the CUE schema of the fleet repository's documents,
// embedded into the binary. It only carries the files; spec applies them.
package schema

import "embed"

// FS holds every *.cue file of the schema.
//
//go:embed *.cue
var FS embed.FS
