package main

import (
	"bytes"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

// inventoryCLI runs fpgaops with args and returns what it wrote to
// stdout, or to stderr when it fails.
func inventoryCLI(args ...string) (string, error) {
	var out, errb bytes.Buffer
	root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &errb})
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		return errb.String(), err
	}
	return out.String(), nil
}

// inventory --endpoint asks a real agent handler, over mutual TLS or
// plain HTTP on loopback, and shows what inventory --root shows on the
// node itself, health included.
func TestInventoryEndpoint(t *testing.T) {
	sysroot := filepath.Join(t.TempDir(), "root")
	tree := fpgatest.NewTree(sysroot)
	for _, c := range []fpgatest.Card{
		{PCI: "0000:5e:00.0", Board: spec.BoardN3000, Stack: fpga.StackDFL, InterfaceID: "9d7324a15c0e4f62b6e83a41f07c2d95",
			AFUID: "c8a2f41e7b3d4e96a15f20d8e6b7c3a9", Health: fpgatest.Health{CatFatal: 0x1, TempMilliC: 52000}},
		{PCI: "0000:3b:00.0", Board: spec.BoardPACA10, Stack: fpga.StackIntelFPGA, InterfaceID: "3e1c7a90d45b4f28be6a0c5d19f27e84",
			AFUID: "a7f3c2e15d8b4f6091e2b7c4d30a8f15", NumVFs: 1, VFDrivers: []string{"vfio-pci"}},
	} {
		if err := tree.AddCard(c); err != nil {
			t.Fatal(err)
		}
	}
	handler := agentapi.NewHandler(fpga.NewSysfsHost(sysroot, nil), agentapi.Server{})
	p := agenttest.NewPKI(t, "inventory")
	conf, err := agentapi.ServerTLS(p.ServerCert, p.ServerKey, p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewUnstartedServer(handler)
	tlsSrv.TLS = conf
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(handler)
	t.Cleanup(plain.Close)

	for _, format := range []string{"table", "json"} {
		local, err := inventoryCLI("inventory", "--root", sysroot, "-o", format)
		if err != nil {
			t.Fatalf("local inventory: %v: %s", err, local)
		}
		if !strings.Contains(local, "fme errors/catfatal_errors = 0x1") {
			t.Fatalf("local %s inventory does not show the catastrophic error:\n%s", format, local)
		}
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"mutual TLS", []string{"--endpoint", tlsSrv.URL, "--agent-cert", p.ClientCert, "--agent-key", p.ClientKey, "--agent-ca", p.CAFile}},
			{"plain HTTP on loopback", []string{"--endpoint", plain.URL, "--insecure"}},
		} {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				remote, err := inventoryCLI(append([]string{"inventory", "-o", format}, tc.args...)...)
				if err != nil {
					t.Fatalf("inventory %s: %v: %s", strings.Join(tc.args, " "), err, remote)
				}
				if remote != local {
					t.Errorf("through the agent:\n%s\non the node:\n%s", remote, local)
				}
			})
		}
	}

	// Without a client certificate the agent does not answer.
	msg, err := inventoryCLI("inventory", "--endpoint", tlsSrv.URL, "--agent-ca", p.CAFile, "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "node 127.0.0.1:") {
		t.Errorf("inventory without a client certificate: %v %s; want an error naming the node", err, msg)
	}
}
