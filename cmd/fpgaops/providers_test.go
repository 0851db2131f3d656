package main

import (
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/spec"
)

func TestVMSide(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name string
		flag string
		node spec.Node
		env  map[string]string
		want string
	}{
		{"libvirt URI", vmSideAuto, spec.Node{Libvirt: "qemu+tls://compute-01/system", Hostname: "compute-01"}, nil, vmSideLibvirt},
		{"hostname with an OpenStack cloud", vmSideAuto, spec.Node{Hostname: "compute-01"}, map[string]string{"OS_CLOUD": "prod"}, vmSideOpenStack},
		{"hostname without OpenStack", vmSideAuto, spec.Node{Hostname: "compute-01"}, nil, vmSideEndpoint},
		{"nothing but an endpoint", vmSideAuto, spec.Node{}, nil, vmSideEndpoint},
		{"forced by the flag", vmSideEndpoint, spec.Node{Libvirt: "qemu:///system"}, nil, vmSideEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &providerFlags{vms: tt.flag, getenv: env(tt.env)}
			if got := f.vmSide(&tt.node); got != tt.want {
				t.Fatalf("vmSide = %s; want %s", got, tt.want)
			}
		})
	}
}

func TestNewProviderRefusesBadEndpointsAllAtOnce(t *testing.T) {
	fleet := &spec.Fleet{Nodes: []spec.Node{
		{Name: "a", Endpoint: "http://10.0.0.1:9443"},
		{Name: "b", Endpoint: "https://b.example:9443"},
		{Name: "c"},
	}}
	_, err := newProvider(fleet, &providerFlags{vms: vmSideAuto, insecure: true, Concurrency: 4})
	if err == nil || !strings.Contains(err.Error(), "node a:") || !strings.Contains(err.Error(), "node c:") {
		t.Fatalf("err = %v; want both bad nodes named", err)
	}
}

// The planner leaves nodes with a hostname to OpenStack exactly when the
// VM side of such a node is OpenStack's.
func TestOpenStackManagesNodesWithAHostname(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		flag    string
		osCloud string
		env     map[string]string
		want    bool
	}{
		{"--os-cloud", vmSideAuto, "lab", nil, true},
		{"OS_CLOUD", vmSideAuto, "", map[string]string{"OS_CLOUD": "prod"}, true},
		{"OS_AUTH_URL", vmSideAuto, "", map[string]string{"OS_AUTH_URL": "https://keystone.example/v3"}, true},
		{"no cloud", vmSideAuto, "", nil, false},
		{"--vms openstack", vmSideOpenStack, "", nil, true},
		{"a cloud but --vms endpoint", vmSideEndpoint, "lab", map[string]string{"OS_CLOUD": "prod"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &providerFlags{vms: tt.flag, osCloud: tt.osCloud, getenv: env(tt.env)}
			if got := f.openStack(); got != tt.want {
				t.Fatalf("openStack = %v; want %v", got, tt.want)
			}
			node := &spec.Node{Name: "compute-01", Hostname: "cmp-01"}
			if side := f.vmSide(node); (side == vmSideOpenStack) != tt.want {
				t.Fatalf("vmSide = %s, yet openStack = %v", side, tt.want)
			}
		})
	}
}
