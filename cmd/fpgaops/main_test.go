package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the scripts in testdata/script run fpgaops as a command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fpgaops": func() { os.Exit(run(os.Args[1:])) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// $EXAMPLES is the repository's examples directory.
			dir, err := filepath.Abs(filepath.Join("..", "..", "examples"))
			env.Setenv("EXAMPLES", dir)
			// $PORT1 and $PORT2 are free loopback ports, for the processes
			// a script starts.
			for _, name := range []string{"PORT1", "PORT2"} {
				ln, lerr := net.Listen("tcp", "127.0.0.1:0")
				if lerr != nil {
					return lerr
				}
				env.Setenv(name, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
				ln.Close()
			}
			return err
		},
	})
}
