// Package agent is the controller's client of the node agents
// (fpga/agent): the card side of every node that has an agent, and the
// transport the simulated fleet's VM side rides on. It also decides which
// agent endpoints the controller may talk to (TLS, or plain HTTP only on
// loopback) and builds the HTTP client that carries the mutual TLS.
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// Client is the controller's side of the API: the card side of a
// provider, reaching each node at its endpoint. It is safe for concurrent
// use.
type Client struct {
	HTTP *http.Client
	// ReadAttempts is how many times a GET (safe to repeat) is tried when
	// it fails in a way a retry may cure; 0 means 3. Changes are never
	// repeated here: the executor decides that.
	ReadAttempts int
	// ReadBackoff is the wait before the second attempt, doubled after;
	// 0 means 100ms.
	ReadBackoff time.Duration
}

var _ providers.Cards = (*Client)(nil)

// NewClient returns a client that sends requests with c (which carries
// the TLS configuration); nil means http.DefaultClient.
func NewClient(c *http.Client) *Client {
	if c == nil {
		c = http.DefaultClient
	}
	return &Client{HTTP: c}
}

// ObserveCards asks the node's agent for its inventory.
func (c *Client) ObserveCards(ctx context.Context, node *spec.Node) ([]fpga.Device, error) {
	var inv agentapi.Inventory
	if err := c.Do(ctx, node, http.MethodGet, agentapi.PathInventory, nil, &inv); err != nil {
		return nil, err
	}
	return inv.Devices, nil
}

// SetVFs asks the agent to turn the card's VFs off or on.
func (c *Client) SetVFs(ctx context.Context, node *spec.Node, pci string, n int) error {
	body, _ := json.Marshal(agentapi.VFsRequest{Count: n})
	var res agentapi.ProgramResult
	if err := c.Do(ctx, node, http.MethodPut, cardPath(agentapi.PathVFs, pci), jsonBody(body), &res); err != nil {
		return err
	}
	if res.Device.NumVFs != n {
		return fmt.Errorf("card %s: VFs read back as %d, want %d", pci, res.Device.NumVFs, n)
	}
	return nil
}

// Probe asks the node's agent to GET url on the node (a rollout's check)
// and returns the HTTP status it got.
func (c *Client) Probe(ctx context.Context, node *spec.Node, url string, timeout time.Duration) (int, error) {
	body, _ := json.Marshal(agentapi.ProbeRequest{URL: url, TimeoutMS: int(timeout.Milliseconds())})
	var res agentapi.ProbeResult
	if err := c.Do(ctx, node, http.MethodPost, agentapi.PathProbe, jsonBody(body), &res); err != nil {
		return 0, err
	}
	if res.Error != "" {
		return 0, errors.New(res.Error)
	}
	return res.Status, nil
}

// Program sends the image (or its URL, for the agent to fetch) and checks
// the AFU ID the agent reads back afterwards.
func (c *Client) Program(ctx context.Context, node *spec.Node, pci string, img Image) error {
	var b Body
	if img.Data != nil {
		b = Body{
			Query:       url.Values{"sha256": {img.Bitstream.SHA256}},
			ContentType: "application/octet-stream",
			Data:        img.Data,
		}
	} else {
		if img.Bitstream.URL == "" {
			return fmt.Errorf("bitstream %s: neither image data nor a URL", img.Bitstream.Name)
		}
		data, _ := json.Marshal(agentapi.ProgramRequest{SHA256: img.Bitstream.SHA256, URL: img.Bitstream.URL})
		b = *jsonBody(data)
	}
	var res agentapi.ProgramResult
	if err := c.Do(ctx, node, http.MethodPost, cardPath(agentapi.PathProgram, pci), &b, &res); err != nil {
		return err
	}
	if want := img.Bitstream.AFUID; want != "" {
		if got := bitstream.NormalizeID(res.Device.AFUID()); got != want {
			return fmt.Errorf("card %s: AFU ID read back is %q, want %q", pci, got, want)
		}
	}
	return nil
}

// Image is the provider's image type, named here for brevity.
type Image = providers.Image

// Body is a request body.
type Body struct {
	Query       url.Values
	ContentType string
	Data        []byte
}

func jsonBody(b []byte) *Body { return &Body{ContentType: "application/json", Data: b} }

// JSONBody encodes v as a request body.
func JSONBody(v any) (*Body, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonBody(b), nil
}

func cardPath(p, pci string) string {
	return strings.Replace(p, "{pci}", url.PathEscape(pci), 1)
}

// Do sends one request to the node's endpoint plus path and decodes a
// JSON answer into out. Error answers come back as *agentapi.Error;
// answers and failures that a retry may cure (503, 502, 504, 429, a dropped or
// refused connection, a timeout) are marked providers.Transient.
func (c *Client) Do(ctx context.Context, node *spec.Node, method, path string, body *Body, out any) error {
	attempts := 1
	if method == http.MethodGet {
		attempts = c.ReadAttempts
		if attempts <= 0 {
			attempts = 3
		}
	}
	wait := c.ReadBackoff
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	for i := 1; ; i++ {
		err := c.do(ctx, node, method, path, body, out)
		if err == nil || i >= attempts || !providers.IsTransient(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
	}
}

func (c *Client) do(ctx context.Context, node *spec.Node, method, path string, body *Body, out any) error {
	if node.Endpoint == "" {
		return fmt.Errorf("node %s has no endpoint", node.Name)
	}
	if err := checkTerm(ctx); err != nil {
		return fmt.Errorf("node %s: %w", node.Name, err)
	}
	u, err := url.Parse(strings.TrimSuffix(node.Endpoint, "/") + path)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", node.Endpoint, err)
	}
	var rd io.Reader
	if body != nil {
		if body.Query != nil {
			u.RawQuery = body.Query.Encode()
		}
		rd = bytes.NewReader(body.Data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if tok, ok := FencingToken(ctx); ok {
		req.Header.Set(agentapi.FencingHeader, strconv.FormatUint(tok, 10))
	}
	if body != nil {
		req.Header.Set("Content-Type", body.ContentType)
	}
	what := method + " " + u.Redacted()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		err = fmt.Errorf("%s: %w", what, unwrapURL(err))
		if ctx.Err() == nil && isNetwork(err) {
			return providers.Transient(err)
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		e := &agentapi.Error{Status: resp.StatusCode}
		var eb agentapi.ErrorBody
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		} else {
			e.Code, e.Message = agentapi.CodeInternal, strings.TrimSpace(string(data))
		}
		err := fmt.Errorf("%s: %s: %w", what, resp.Status, e)
		switch resp.StatusCode {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			return providers.Transient(err)
		}
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: answer: %w", what, err)
	}
	return nil
}

// unwrapURL drops the *url.Error layer, whose text repeats the URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed)
}
