// Package openstacktest holds what the OpenStack provider's tests run
// against: fixture servers for Keystone, Nova, Glance and Cyborg that follow
// their API references strictly (methods, paths, microversion headers, the
// token, request bodies; answers shaped like the api-ref samples), and a
// harness that starts a real Placement API. The fixtures report every
// request that breaks the API reference as a test error, so a client that
// drifts from the references fails its tests.
//
// Where fpgaops depends on how the services behave, not only on what they
// answer, the fixtures do what the services' code does, each rule citing
// the upstream file: Cyborg's agent and conductor report cards into the
// real Placement (agent.go), its program action leaves bitstream_id alone,
// a bind schedules through Placement and needs accel:function_id on the
// image (cyborg.go), Nova puts a server whose bind failed in ERROR
// (nova.go).
package openstacktest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Cloud is one fixture OpenStack: Keystone at /identity, Nova at
// /compute, Glance at /image and Cyborg at /accelerator, all on one
// loopback server. Placement is not faked: pass the URL of a real one.
type Cloud struct {
	t   testing.TB
	srv *httptest.Server

	// Username, Password, Project and Domain are the credentials Keystone
	// accepts; Token is the token it issues.
	Username, Password, Project, Domain string
	Token                               string
	Region                              string
	// PlacementURL is put into the catalog as the placement endpoint.
	PlacementURL string
	// BootPolls is how many reads of a server created through the API
	// find it in BUILD before it settles; BootFault, when set, makes it
	// settle in ERROR with this fault message (as "No valid host was
	// found") instead of ACTIVE. Set them before the test makes requests.
	BootPolls int
	BootFault string

	mu          sync.Mutex
	hosts       map[string]Host
	providers   []string // made in Placement, in order
	images      []*Image
	imageData   map[string][]byte
	profiles    []*Profile
	deployables []*Deployable
	devices     []*Device
	arqs        []*ARQ
	flavors     []*Flavor
	servers     []*Server
	requests    []string
	seq         int
}

// NewCloud starts the fixture cloud; it stops when the test ends.
// placementURL is the real Placement API's URL.
func NewCloud(t testing.TB, placementURL string) *Cloud {
	t.Helper()
	c := &Cloud{
		t:            t,
		Username:     "fpgaops",
		Password:     randomHex(12),
		Project:      "fpga",
		Domain:       "Default",
		Token:        "gAAAA" + randomHex(16),
		Region:       "RegionOne",
		PlacementURL: placementURL,
		imageData:    map[string][]byte{},
	}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

// URL is the server's base URL.
func (c *Cloud) URL() string { return c.srv.URL }

// AuthURL is Keystone's v3 endpoint, as clouds.yaml names it.
func (c *Cloud) AuthURL() string { return c.srv.URL + "/identity/v3" }

// Requests returns "METHOD path?query" for every request served so far.
func (c *Cloud) Requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.requests...)
}

// CloudsYAML returns a clouds.yaml naming this cloud.
func (c *Cloud) CloudsYAML(name string) string {
	return fmt.Sprintf(`clouds:
  %s:
    auth:
      auth_url: %s
      username: %s
      password: %s
      project_name: %s
      user_domain_name: %s
      project_domain_name: %s
    region_name: %s
    interface: public
`, name, c.AuthURL(), c.Username, c.Password, c.Project, c.Domain, c.Domain, c.Region)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// violation reports a request that breaks the API reference, and answers
// it with the error code the real service would give.
func (c *Cloud) violation(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.t.Errorf("openstacktest: %s", msg)
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// refuse answers a request the real service would refuse without it being
// a client bug the test should fail on (a conflict, a missing object).
func refuse(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, map[string]any{kind: map[string]any{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// decodeStrict decodes a JSON body, refusing unknown fields.
func decodeStrict(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("content type %q: want application/json", ct)
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body %s: %w", b, err)
	}
	return nil
}

func (c *Cloud) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests = append(c.requests, r.Method+" "+r.URL.RequestURI())
	c.mu.Unlock()
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/identity/"):
		c.serveKeystone(w, r, strings.TrimPrefix(p, "/identity"))
	case strings.HasPrefix(p, "/compute/"):
		if !c.authorized(w, r) {
			return
		}
		c.serveNova(w, r, strings.TrimPrefix(p, "/compute"))
	case strings.HasPrefix(p, "/image/"):
		// Glance's version document needs no token.
		if p != "/image/" && !c.authorized(w, r) {
			return
		}
		c.serveGlance(w, r, strings.TrimPrefix(p, "/image"))
	case strings.HasPrefix(p, "/accelerator/"):
		if p != "/accelerator/" && !c.authorized(w, r) {
			return
		}
		c.serveCyborg(w, r, strings.TrimPrefix(p, "/accelerator"))
	default:
		c.violation(w, http.StatusNotFound, "%s %s: no such service", r.Method, p)
	}
}

func (c *Cloud) authorized(w http.ResponseWriter, r *http.Request) bool {
	if got := r.Header.Get("X-Auth-Token"); got != c.Token {
		c.violation(w, http.StatusUnauthorized, "%s %s: X-Auth-Token is not the issued token", r.Method, r.URL.Path)
		return false
	}
	return true
}

// notAllowed reports a method the API reference does not define for path.
func (c *Cloud) notAllowed(w http.ResponseWriter, r *http.Request) {
	c.violation(w, http.StatusMethodNotAllowed, "%s %s: method not in the API reference", r.Method, r.URL.Path)
}

func (c *Cloud) next() int {
	c.seq++
	return c.seq
}

const stamp = "2026-01-15T10:00:00Z"

// values copies what the pointers point to, so that callers read the
// cloud's objects without holding its lock.
func values[T any](ps []*T) []T {
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}
