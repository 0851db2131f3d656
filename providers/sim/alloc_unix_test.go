//go:build unix

package sim_test

import (
	"io/fs"
	"syscall"
)

// allocated is how much of a file is on disk: bbolt grows its file ahead
// of use, and the blocks it has not written yet are holes.
func allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return min(fi.Size(), st.Blocks*512)
	}
	return fi.Size()
}
