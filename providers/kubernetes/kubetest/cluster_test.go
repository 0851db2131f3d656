package kubetest

import (
	"os"
	"regexp"
	"testing"
)

// The version the tests look for is the one scripts/kube-binaries.sh
// builds: test/kube/go.mod's requirement of k8s.io/kubernetes.
func TestVersionMatchesTheBuildModule(t *testing.T) {
	data, err := os.ReadFile("../../../test/kube/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)`).FindSubmatch(data)
	if m == nil || string(m[1]) != Version {
		t.Fatalf("test/kube/go.mod requires k8s.io/kubernetes %q, kubetest.Version is %s", m, Version)
	}
}
