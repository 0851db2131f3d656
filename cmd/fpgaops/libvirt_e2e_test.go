package main

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/providers/libvirt/libvirttest"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestLibvirtScripts runs the scripts in testdata/libvirt: the fleet's VMs
// live in a real libvirtd (its test driver, holding libvirtFleet) and its
// cards are simulated. Each script gets its own daemon and sim.
func TestLibvirtScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/libvirt",
		RequireExplicitExec: true,
		Setup:               setupLibvirtFleet,
	})
}

// libvirtFleet is node compute-01 as its libvirtd sees it: the functions
// of two N3000 cards (one with its VF), two stopped VMs and a running
// one.
var libvirtFleet = libvirttest.Fleet{
	Domains: []libvirttest.Domain{
		{Name: "vnf-a"},
		{Name: "vnf-b"},
		{Name: "db-01", Running: true},
	},
	Devices: []libvirttest.PCIDevice{
		{Address: "0000:5e:00.0", Vendor: 0x8086, Product: 0x0b30, IOMMUGroup: 40},
		{Address: "0000:5e:00.1", Vendor: 0x8086, Product: 0x0b31, IOMMUGroup: 41, PhysFn: "0000:5e:00.0"},
		{Address: "0000:af:00.0", Vendor: 0x8086, Product: 0x0b30, IOMMUGroup: 70, NUMANode: 1},
	},
}

// setupLibvirtFleet starts the daemon and a sim of the nodes in
// fleet/nodes.yaml, and fills the placeholders of the script's fleet
// repository (fleet/*.yaml): @LIBVIRT@ becomes the node's libvirt URI,
// @SIM@ the sim's address. $VIRSH_URI reaches the same fleet state with
// virsh.
func setupLibvirtFleet(env *testscript.Env) error {
	d, err := libvirttest.StartDaemon(filepath.Join(env.WorkDir, ".libvirtd"))
	if err != nil {
		return err
	}
	env.Defer(func() { d.Stop() })
	uri, err := d.WriteFleet("compute-01", libvirtFleet)
	if err != nil {
		return err
	}
	// Each run of fpgaops is a new connection, and the test driver gives
	// each its own copy of the fleet: share one, as a real host would.
	sh, err := d.Share(uri)
	if err != nil {
		return err
	}
	env.Defer(func() { sh.Close() })
	path := strings.TrimPrefix(uri, "test://")
	env.Setenv("VIRSH_URI", "test+unix://"+path+"?socket="+sh.Socket)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	repo := filepath.Join(env.WorkDir, "fleet")
	files, err := filepath.Glob(filepath.Join(repo, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		b = []byte(strings.NewReplacer(
			"@LIBVIRT@", uri+"?socket="+sh.Socket,
			"@SIM@", "http://"+ln.Addr().String(),
		).Replace(string(b)))
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return err
		}
	}
	// The sim serves the nodes alone: the script builds the bitstreams
	// the rest of the repository names.
	nodesOnly := filepath.Join(env.WorkDir, ".sim")
	if err := os.MkdirAll(nodesOnly, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(repo, "nodes.yaml"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(nodesOnly, "nodes.yaml"), b, 0o644); err != nil {
		return err
	}
	fleet, err := spec.Load(nodesOnly)
	if err != nil {
		ln.Close()
		return fmt.Errorf("nodes of the script: %w", err)
	}
	s, err := sim.New(fleet, sim.Options{})
	if err != nil {
		ln.Close()
		return err
	}
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	env.Defer(func() {
		srv.Close()
		s.Close()
	})
	return nil
}
