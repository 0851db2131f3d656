package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// TestAgentCommand serves a fake sysfs tree with `fpgaops agent` over
// mutual TLS and reads it back with the controller's client.
func TestAgentCommand(t *testing.T) {
	sysroot := filepath.Join(t.TempDir(), "root")
	tree := fpgatest.NewTree(sysroot)
	if err := tree.AddCard(fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, Stack: fpga.StackDFL,
		InterfaceID: "9d7324a15c0e4f62b6e83a41f07c2d95", AFUID: "c8a2f41e7b3d4e96a15f20d8e6b7c3a9"}); err != nil {
		t.Fatal(err)
	}
	p := agenttest.NewPKI(t, "fleet")

	// A free loopback port for the agent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan string, 1)
	go func() {
		var out, errb bytes.Buffer
		root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &errb})
		root.SetArgs([]string{"agent", "--listen", addr, "--root", sysroot, "--tls-cert", p.ServerCert, "--tls-key", p.ServerKey, "--client-ca", p.CAFile})
		err := root.ExecuteContext(ctx)
		msg := errb.String()
		if err != nil {
			msg += err.Error()
		}
		done <- msg
	}()
	t.Cleanup(func() {
		cancel()
		if msg := <-done; strings.Contains(msg, "Error") {
			t.Errorf("agent: %s", msg)
		}
	})

	conf, err := agent.ClientTLS(p.ClientCert, p.ClientKey, p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c := agent.NewClient(&http.Client{Transport: &http.Transport{TLSClientConfig: conf}})
	c.ReadAttempts, c.ReadBackoff = 20, 50*time.Millisecond // while the agent starts
	node := &spec.Node{Name: "compute-01", Endpoint: "https://" + addr}
	devs, err := c.ObserveCards(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].PCI != "0000:5e:00.0" || devs[0].AFUID() != "c8a2f41e7b3d4e96a15f20d8e6b7c3a9" {
		t.Fatalf("agent inventory = %+v; want the fake tree's one N3000", devs)
	}

	// Without a client certificate the handshake fails.
	bare := agent.NewClient(&http.Client{Transport: &http.Transport{TLSClientConfig: mustClientTLS(t, "", "", p.CAFile)}})
	bare.ReadAttempts = 1
	if _, err := bare.ObserveCards(context.Background(), node); err == nil {
		t.Fatal("the agent answered a client without a certificate")
	}
}

func mustClientTLS(t *testing.T, cert, key, ca string) *tls.Config {
	t.Helper()
	c, err := agent.ClientTLS(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
