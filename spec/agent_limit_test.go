package spec_test

import (
	"testing"

	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// TestBitstreamLimitIsTheAgents: by default validate refuses an image the
// node agents would refuse at apply.
func TestBitstreamLimitIsTheAgents(t *testing.T) {
	if spec.DefaultMaxBitstreamBytes != agent.DefaultMaxImageBytes {
		t.Errorf("spec.DefaultMaxBitstreamBytes %d, agent.DefaultMaxImageBytes %d", spec.DefaultMaxBitstreamBytes, agent.DefaultMaxImageBytes)
	}
}
