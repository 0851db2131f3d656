package openstacktest

import (
	"strings"
	"testing"
)

func TestStartPlacementFailsClearlyWithoutTheServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	p, err := StartPlacement()
	if err == nil {
		p.Stop()
		t.Fatal("started without placement-api on PATH")
	}
	if !strings.Contains(err.Error(), "placement-api not found") || !strings.Contains(err.Error(), ".ci/run installs it") {
		t.Errorf("error %q does not say what is missing and where it comes from", err)
	}
}
