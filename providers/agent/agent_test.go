package agent_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// startTLS serves h over mutual TLS with the pki's server certificate.
func startTLS(t *testing.T, p *agenttest.PKI, h fpga.Host, s agentapi.Server) string {
	t.Helper()
	conf, err := agentapi.ServerTLS(p.ServerCert, p.ServerKey, p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(agentapi.NewHandler(h, s))
	srv.TLS = conf
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func client(t *testing.T, caFile, cert, key string) *agent.Client {
	t.Helper()
	conf, err := agent.ClientTLS(cert, key, caFile)
	if err != nil {
		t.Fatal(err)
	}
	return agent.NewClient(&http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second})
}

func TestMutualTLS(t *testing.T) {
	p := agenttest.NewPKI(t, "fleet")
	other := agenttest.NewPKI(t, "other")
	url := startTLS(t, p, agenttest.NewMemHost(), agentapi.Server{})
	node := &spec.Node{Name: "compute-01", Endpoint: url}

	tests := []struct {
		name      string
		cert, key string
		wantErr   bool
	}{
		{"client certificate from the fleet CA", p.ClientCert, p.ClientKey, false},
		{"no client certificate", "", "", true},
		{"client certificate from another CA", other.ClientCert, other.ClientKey, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			devs, err := client(t, p.CAFile, tt.cert, tt.key).ObserveCards(context.Background(), node)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("inventory answered %d devices; want the handshake refused", len(devs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(devs) != 1 || devs[0].PCI != agenttest.CardPCI {
				t.Fatalf("inventory = %+v; want the one card %s", devs, agenttest.CardPCI)
			}
		})
	}

	t.Run("server certificate from another CA", func(t *testing.T) {
		_, err := client(t, other.CAFile, other.ClientCert, other.ClientKey).ObserveCards(context.Background(), node)
		if err == nil {
			t.Fatal("the client trusted a server its CA did not sign")
		}
	})
}

func TestProgram(t *testing.T) {
	p := agenttest.NewPKI(t, "fleet")
	image, bs := agenttest.Image(t)
	imageServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(image)
	}))
	t.Cleanup(imageServer.Close)
	other := bytes.Clone(image)
	other[len(other)-1] ^= 0xff

	tests := []struct {
		name     string
		img      providers.Image
		limit    int64
		wantCode string
	}{
		{name: "upload", img: providers.Image{Bitstream: bs, Data: image}},
		{name: "upload with the wrong digest", img: providers.Image{Bitstream: bs, Data: other}, wantCode: agentapi.CodeDigestMismatch},
		{name: "upload over the size limit", img: providers.Image{Bitstream: bs, Data: image}, limit: 1024, wantCode: agentapi.CodeTooLarge},
		{name: "fetch from URL", img: providers.Image{Bitstream: withURL(bs, imageServer.URL+"/nlb.gbs")}},
		{name: "fetch with the wrong digest", img: providers.Image{Bitstream: withDigest(withURL(bs, imageServer.URL+"/nlb.gbs"), strings.Repeat("ab", 32))}, wantCode: agentapi.CodeDigestMismatch},
		{name: "fetch over the size limit", img: providers.Image{Bitstream: withURL(bs, imageServer.URL+"/nlb.gbs")}, limit: 1024, wantCode: agentapi.CodeTooLarge},
		{name: "no card at the address", img: providers.Image{Bitstream: bs, Data: image}, wantCode: agentapi.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := agenttest.NewMemHost()
			url := startTLS(t, p, h, agentapi.Server{MaxImageBytes: tt.limit, FetchAllow: []string{strings.TrimPrefix(imageServer.URL, "http://")}})
			c := client(t, p.CAFile, p.ClientCert, p.ClientKey)
			pci := agenttest.CardPCI
			if tt.wantCode == agentapi.CodeNotFound {
				pci = "0000:af:00.0"
			}
			err := c.Program(context.Background(), &spec.Node{Name: "compute-01", Endpoint: url}, pci, tt.img)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				dev := h.Device()
				if got := dev.AFUID(); got != agenttest.AFUID {
					t.Fatalf("AFU ID after program = %q; want %q", got, agenttest.AFUID)
				}
				return
			}
			var apiErr *agentapi.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode {
				t.Fatalf("err = %v; want an API error with code %s", err, tt.wantCode)
			}
			if n := h.Programs(); n != 0 {
				t.Fatalf("host programmed %d times; want a refusal before programming", n)
			}
			if providers.IsTransient(err) {
				t.Fatalf("err %v is marked transient; a retry cannot cure it", err)
			}
		})
	}
}

func withURL(b spec.Bitstream, u string) spec.Bitstream    { b.URL = u; return b }
func withDigest(b spec.Bitstream, d string) spec.Bitstream { b.SHA256 = d; return b }

func TestSetVFs(t *testing.T) {
	h := agenttest.NewMemHost()
	srv := httptest.NewServer(agentapi.NewHandler(h, agentapi.Server{}))
	t.Cleanup(srv.Close)
	c := agent.NewClient(srv.Client())
	node := &spec.Node{Name: "compute-01", Endpoint: srv.URL}
	if err := c.SetVFs(context.Background(), node, agenttest.CardPCI, 1); err != nil {
		t.Fatal(err)
	}
	devs, err := c.ObserveCards(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	if devs[0].NumVFs != 1 {
		t.Fatalf("NumVFs = %d after setting 1", devs[0].NumVFs)
	}
	err = c.SetVFs(context.Background(), node, "not-a-pci", 1)
	var apiErr *agentapi.Error
	if !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeBadRequest {
		t.Fatalf("bad PCI address: err = %v; want bad_request", err)
	}
}

func TestReadsAreRetriedChangesAreNot(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	h := agentapi.NewHandler(agenttest.NewMemHost(), agentapi.Server{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.Method]++
		n := calls[r.Method]
		mu.Unlock()
		if n <= 2 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":{"code":"unavailable","message":"busy"}}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := agent.NewClient(srv.Client())
	c.ReadBackoff = time.Millisecond
	node := &spec.Node{Name: "compute-01", Endpoint: srv.URL}

	if _, err := c.ObserveCards(context.Background(), node); err != nil {
		t.Fatalf("inventory after two 503s: %v; want the third attempt to answer", err)
	}
	err := c.SetVFs(context.Background(), node, agenttest.CardPCI, 1)
	if err == nil || !providers.IsTransient(err) {
		t.Fatalf("set VFs answered 503: err = %v; want a transient error", err)
	}
	if calls["GET"] != 3 || calls["PUT"] != 1 {
		t.Fatalf("calls = %v; want 3 GETs and 1 PUT", calls)
	}
}
