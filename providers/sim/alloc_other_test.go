//go:build !unix

package sim_test

import "io/fs"

// allocated is the file's size where the system does not tell its blocks.
func allocated(fi fs.FileInfo) int64 { return fi.Size() }
