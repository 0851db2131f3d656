package kubernetes

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/fpgaops/fpgaops/providers/kubernetes/kubetest"
)

// cluster is the real kube-apiserver and kube-scheduler every test of
// this package shares; TestMain starts it.
var cluster *kubetest.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	c, err := kubetest.Start()
	if err != nil {
		// Missing binaries fail, never skip: make test builds them.
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, cluster.Logs())
	}
	c.Stop()
	os.Exit(code)
}
