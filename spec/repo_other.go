//go:build !unix

package spec

import "os"

// openFlags open a file for reading.
const openFlags = os.O_RDONLY
