// Command fpgaops is a declarative GitOps reconciler for FPGA fleets.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:]))
}
