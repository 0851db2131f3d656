package agent_test

import (
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
)

func TestCheckEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		insecure bool
		wantErr  string
	}{
		{"https", "https://compute-01.dc1.example:9443", false, ""},
		{"plain HTTP on loopback with --insecure", "http://127.0.0.1:9440/nodes/compute-01", true, ""},
		{"plain HTTP on localhost with --insecure", "http://localhost:9440/nodes/compute-01", true, ""},
		{"plain HTTP without --insecure", "http://127.0.0.1:9440/nodes/compute-01", false, "pass --insecure"},
		{"plain HTTP off loopback", "http://10.0.0.5:9443", true, "only on loopback"},
		{"other scheme", "ftp://compute-01.dc1.example", false, "want an https URL"},
		{"no endpoint", "", false, "no endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := agent.Transport{Insecure: tt.insecure}.CheckEndpoints([]spec.Node{{Name: "compute-01", Endpoint: tt.endpoint}})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v; want one saying %q", err, tt.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "node compute-01: "):
				t.Fatalf("err = %v; want it to name the node", err)
			}
		})
	}
}
