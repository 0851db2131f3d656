package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
	"github.com/fpgaops/fpgaops/fpga/bitstream"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	cardPCI     = "0000:5e:00.0"
	interfaceID = "69528db6eb31577a8c3668f9faa081f6"
	afuID       = "d8424dc4a4a3c413f89e433683f9040b"
)

// memHost is a one-card host in memory: enough to test the API without a
// sysfs tree.
type memHost struct {
	mu       sync.Mutex
	dev      fpga.Device
	programs int
}

func newMemHost() *memHost {
	return &memHost{dev: fpga.Device{
		PCI: cardPCI, Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000",
		InterfaceID: interfaceID, TotalVFs: 1, Ports: []fpga.Port{{ID: 0}},
	}}
}

func (h *memHost) Discover(context.Context) ([]fpga.Device, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return []fpga.Device{h.dev}, nil
}

func (h *memHost) SetVFs(_ context.Context, pci string, n int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pci != h.dev.PCI {
		return agent.ErrNoCard
	}
	h.dev.NumVFs = n
	return nil
}

func (h *memHost) Program(_ context.Context, pci string, image []byte, _ fpga.ProgramOptions) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pci != h.dev.PCI {
		return agent.ErrNoCard
	}
	f, err := bitstream.Parse(image)
	if err != nil {
		return err
	}
	h.dev.Ports[0].AFUID = f.AFUID()
	h.programs++
	return nil
}

func (h *memHost) programCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.programs
}

func testImage(t *testing.T) ([]byte, spec.Bitstream) {
	t.Helper()
	md := bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{
		MagicNo:       bitstream.MagicNo,
		InterfaceUUID: interfaceID,
		AcceleratorClusters: []bitstream.Cluster{{
			Name: "nlb", TotalContexts: 1, AcceleratorTypeUUID: afuID,
		}},
	}}
	data, err := bitstream.Build(md, bytes.Repeat([]byte{0xa5}, 4096))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return data, spec.Bitstream{
		Name: "nlb", SHA256: hex.EncodeToString(sum[:]), InterfaceID: interfaceID, AFUID: afuID,
	}
}

// startTLS serves h over mutual TLS with the pki's server certificate.
func startTLS(t *testing.T, p *agenttest.PKI, h fpga.Host, s agent.Server) string {
	t.Helper()
	conf, err := agent.ServerTLS(p.ServerCert, p.ServerKey, p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(agent.NewHandler(h, s))
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
	url := startTLS(t, p, newMemHost(), agent.Server{})
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
			if len(devs) != 1 || devs[0].PCI != cardPCI {
				t.Fatalf("inventory = %+v; want the one card %s", devs, cardPCI)
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
	image, bs := testImage(t)
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
		{name: "upload with the wrong digest", img: providers.Image{Bitstream: bs, Data: other}, wantCode: agent.CodeDigestMismatch},
		{name: "upload over the size limit", img: providers.Image{Bitstream: bs, Data: image}, limit: 1024, wantCode: agent.CodeTooLarge},
		{name: "fetch from URL", img: providers.Image{Bitstream: withURL(bs, imageServer.URL+"/nlb.gbs")}},
		{name: "fetch with the wrong digest", img: providers.Image{Bitstream: withDigest(withURL(bs, imageServer.URL+"/nlb.gbs"), strings.Repeat("ab", 32))}, wantCode: agent.CodeDigestMismatch},
		{name: "fetch over the size limit", img: providers.Image{Bitstream: withURL(bs, imageServer.URL+"/nlb.gbs")}, limit: 1024, wantCode: agent.CodeTooLarge},
		{name: "no card at the address", img: providers.Image{Bitstream: bs, Data: image}, wantCode: agent.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newMemHost()
			url := startTLS(t, p, h, agent.Server{MaxImageBytes: tt.limit})
			c := client(t, p.CAFile, p.ClientCert, p.ClientKey)
			pci := cardPCI
			if tt.wantCode == agent.CodeNotFound {
				pci = "0000:af:00.0"
			}
			err := c.Program(context.Background(), &spec.Node{Name: "compute-01", Endpoint: url}, pci, tt.img)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := h.dev.AFUID(); got != afuID {
					t.Fatalf("AFU ID after program = %q; want %q", got, afuID)
				}
				return
			}
			var apiErr *agent.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode {
				t.Fatalf("err = %v; want an API error with code %s", err, tt.wantCode)
			}
			if n := h.programCount(); n != 0 {
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
	h := newMemHost()
	srv := httptest.NewServer(agent.NewHandler(h, agent.Server{}))
	t.Cleanup(srv.Close)
	c := agent.NewClient(srv.Client())
	node := &spec.Node{Name: "compute-01", Endpoint: srv.URL}
	if err := c.SetVFs(context.Background(), node, cardPCI, 1); err != nil {
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
	var apiErr *agent.Error
	if !errors.As(err, &apiErr) || apiErr.Code != agent.CodeBadRequest {
		t.Fatalf("bad PCI address: err = %v; want bad_request", err)
	}
}

func TestErrorsAreJSON(t *testing.T) {
	srv := httptest.NewServer(agent.NewHandler(newMemHost(), agent.Server{MaxJSONBytes: 16}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown path", "GET", "/v2/inventory", "", 404, agent.CodeNotFound},
		{"JSON body over the limit", "PUT", "/v1/cards/" + cardPCI + "/vfs", `{"count": 1, "padding": "xxxxxxxxxxxxxxxx"}`, 413, agent.CodeTooLarge},
		{"unknown field", "PUT", "/v1/cards/" + cardPCI + "/vfs", `{"cnt":1}`, 400, agent.CodeBadRequest},
		{"program without a digest", "POST", "/v1/cards/" + cardPCI + "/program", "x", 400, agent.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.method == "POST" {
				req.Header.Set("Content-Type", "application/octet-stream")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb agent.ErrorBody
			if err := jsonDecode(resp, &eb); err != nil {
				t.Fatalf("answer is not a JSON error: %v", err)
			}
			if resp.StatusCode != tt.status || eb.Error == nil || eb.Error.Code != tt.code || eb.Error.Message == "" {
				t.Fatalf("got %d %+v; want %d with code %s and a message", resp.StatusCode, eb.Error, tt.status, tt.code)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	conf := &tls.Config{}
	tests := []struct {
		name     string
		addr     string
		tls      *tls.Config
		insecure bool
		ok       bool
	}{
		{"TLS on every interface", ":9443", conf, false, true},
		{"plain HTTP on IPv4 loopback", "127.0.0.1:9443", nil, true, true},
		{"plain HTTP on IPv6 loopback", "[::1]:9443", nil, true, true},
		{"plain HTTP on localhost", "localhost:9443", nil, true, true},
		{"plain HTTP on every interface", ":9443", nil, true, false},
		{"plain HTTP on a routable address", "10.0.0.5:9443", nil, true, false},
		{"neither TLS nor insecure", "127.0.0.1:9443", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := agent.CheckListen(tt.addr, tt.tls, tt.insecure)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckListen(%q) = %v; want ok=%v", tt.addr, err, tt.ok)
			}
		})
	}
}

func TestReadsAreRetriedChangesAreNot(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	h := agent.NewHandler(newMemHost(), agent.Server{})
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
	err := c.SetVFs(context.Background(), node, cardPCI, 1)
	if err == nil || !providers.IsTransient(err) {
		t.Fatalf("set VFs answered 503: err = %v; want a transient error", err)
	}
	if calls["GET"] != 3 || calls["PUT"] != 1 {
		t.Fatalf("calls = %v; want 3 GETs and 1 PUT", calls)
	}
}
