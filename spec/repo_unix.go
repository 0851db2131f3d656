//go:build unix

package spec

import (
	"os"
	"syscall"
)

// openFlags open a file for reading without waiting on a FIFO.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK
