package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// FencingHeader carries a controller's fencing token: the revision at
// which it was elected leader (docs/controller.md, High availability).
// A controller that runs alone sends none.
const FencingHeader = "Fpgaops-Fencing-Token"

// Answers about fencing tokens.
const (
	// CodeFenced: the request carries a token older than one the agent
	// has seen; a newer controller leads, and this one must stop.
	CodeFenced = "fenced"
	// CodeTokenRequired: the agent requires a token and got none.
	CodeTokenRequired = "fencing_token_required"
)

// FenceFile is the file in the agent's state directory that keeps the
// highest fencing token it has seen.
const FenceFile = "fence.json"

// maxFenceFile bounds the fence file read at start.
const maxFenceFile = 1 << 20

// Fence keeps, per host, the highest fencing token any request carried,
// and refuses a request with a lower one. A request that raises the
// token waits for the requests in flight under the lower one to finish
// first, so that once it is answered, nothing the older controller asked
// for is still happening on the host. Tokens are kept in FenceFile when
// the Fence has a directory, and the file is synced before the raise is
// answered, so a restarted agent still refuses the older controller.
type Fence struct {
	path string // "" keeps the tokens in the process only
	// require refuses requests that carry no token.
	require bool

	mu    sync.Mutex // guards hosts and writes of the file
	hosts map[string]*hostFence
}

// hostFence is one host's token. Each request holds gate for reading while
// it is served; a raise holds it for writing.
type hostFence struct {
	gate  sync.RWMutex
	token uint64 // written under gate and Fence.mu
}

// fenceFile is FenceFile's format: the token of each host, by the key of
// the host (empty for an agent's one host, the node's name in the
// simulated fleet).
type fenceFile struct {
	Tokens map[string]uint64 `json:"tokens"`
}

// OpenFence reads the tokens kept in dir; an empty dir keeps them in the
// process only. With require, a request without a token is refused: an
// agent whose controllers all run with etcd should say so, so that a
// controller started without it by mistake cannot change its cards.
func OpenFence(dir string, require bool) (*Fence, error) {
	f := &Fence{require: require, hosts: map[string]*hostFence{}}
	if dir == "" {
		return f, nil
	}
	f.path = filepath.Join(dir, FenceFile)
	data, err := readKept(f.path, maxFenceFile, "a fence file")
	if err != nil {
		return nil, err
	}
	if data == nil {
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ff fenceFile
	if err := dec.Decode(&ff); err != nil {
		return nil, fmt.Errorf("%s: %w", jsonPos(f.path, data, dec.InputOffset(), err), err)
	}
	for key, tok := range ff.Tokens {
		f.hosts[key] = &hostFence{token: tok}
	}
	return f, nil
}

// Token is the highest token the host key names has seen; 0 when none.
func (f *Fence) Token(key string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.hosts[key]; ok {
		return h.token
	}
	return 0
}

func (f *Fence) host(key string) *hostFence {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[key]
	if !ok {
		h = &hostFence{}
		f.hosts[key] = h
	}
	return h
}

// ParseFencingToken reads a request's token: 0 and no error when it
// carries none.
func ParseFencingToken(r *http.Request) (uint64, error) {
	v := r.Header.Get(FencingHeader)
	if v == "" {
		return 0, nil
	}
	tok, err := strconv.ParseUint(v, 10, 64)
	if err != nil || tok == 0 {
		return 0, Errorf(http.StatusBadRequest, CodeBadRequest, "%s %q: want a positive integer", FencingHeader, v)
	}
	return tok, nil
}

// Admit lets a request for the host key names in, or refuses it. On
// success the caller serves the request and then calls release.
func (f *Fence) Admit(r *http.Request, key string) (release func(), err error) {
	tok, err := ParseFencingToken(r)
	if err != nil {
		return nil, err
	}
	if tok == 0 && f.require {
		return nil, Errorf(http.StatusPreconditionRequired, CodeTokenRequired, "this agent requires a fencing token (%s): is the controller running without --etcd?", FencingHeader)
	}
	h := f.host(key)
	for {
		h.gate.RLock()
		cur := h.token
		switch {
		case tok == 0 || tok == cur:
			return h.gate.RUnlock, nil
		case tok < cur:
			h.gate.RUnlock()
			return nil, Errorf(http.StatusConflict, CodeFenced, "fencing token %d is older than %d: a newer controller leads, and this one must stop", tok, cur)
		}
		h.gate.RUnlock()
		if err := f.raise(h, key, tok); err != nil {
			return nil, err
		}
		// Admit again: another request may have raised it further.
	}
}

// raise makes tok the host's token once the requests in flight under the
// older one have finished, and saves it before anything is answered.
func (f *Fence) raise(h *hostFence, key string, tok uint64) error {
	h.gate.Lock()
	defer h.gate.Unlock()
	if tok <= h.token {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := h.token
	h.token = tok
	if err := f.save(); err != nil {
		h.token = old
		return fmt.Errorf("fencing token: %w", err)
	}
	return nil
}

// save writes every host's token; callers hold f.mu.
func (f *Fence) save() error {
	if f.path == "" {
		return nil
	}
	ff := fenceFile{Tokens: make(map[string]uint64, len(f.hosts))}
	for _, key := range slices.Sorted(maps.Keys(f.hosts)) {
		if t := f.hosts[key].token; t > 0 {
			ff.Tokens[key] = t
		}
	}
	data, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(f.path, append(data, '\n'))
}

// Fenced wraps a handler of the routes below prefix (as Register takes
// it) with the Server's fence: for a server of this API family that adds
// routes of its own that change a host (the simulated fleet's VMs).
func (s *Server) Fenced(prefix string, h http.HandlerFunc) http.HandlerFunc {
	if s.Fence == nil {
		return h
	}
	key := hostKey(prefix)
	return func(w http.ResponseWriter, r *http.Request) {
		release, err := s.Fence.Admit(r, key(r))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer release()
		h(w, r)
	}
}
