package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
)

// Limits the server applies unless told otherwise.
const (
	// DefaultMaxImageBytes bounds an uploaded or fetched image. Real GBS
	// files are tens of megabytes.
	DefaultMaxImageBytes = 256 << 20
	// DefaultMaxJSONBytes bounds every JSON request body.
	DefaultMaxJSONBytes = 64 << 10
	// DefaultFetchTimeout bounds fetching an image from a URL.
	DefaultFetchTimeout = 5 * time.Minute
	// DefaultMaxUploads bounds the program requests in flight: images
	// being received or fetched, verified or programmed. Each holds at
	// most one image on disk.
	DefaultMaxUploads = 4
	// DefaultMaxImagesInMemory bounds the verified images read into
	// memory for the host at once, so that the agent's memory stays under
	// this many times the image limit, plus small buffers.
	DefaultMaxImagesInMemory = 2
	// retryAfter is the Retry-After, in seconds, of a busy answer.
	retryAfter = "5"
)

// HostFunc returns the Host a request is for: the agent's one host, or in
// the simulated fleet the node the path names.
type HostFunc func(r *http.Request) (fpga.Host, error)

// Server answers the v1 API for the hosts its HostFunc returns.
type Server struct {
	Host HostFunc
	// MaxImageBytes and MaxJSONBytes bound request bodies; zero means the
	// defaults.
	MaxImageBytes int64
	MaxJSONBytes  int64
	// FetchAllow lists the hosts images may be fetched from by URL, as
	// HOST or HOST:PORT (see ParseFetchAllow); empty refuses every URL.
	FetchAllow []string
	// Fetch is the client that fetches images given by URL; nil means a
	// client with DefaultFetchTimeout. Redirects are followed only to
	// hosts in FetchAllow.
	Fetch *http.Client
	// MaxUploads and MaxImagesInMemory bound program requests, per host
	// (per node of the simulated fleet); zero means the defaults. A program
	// request past MaxUploads is answered 503 without reading its body.
	MaxUploads        int
	MaxImagesInMemory int
	// TempDir is where images are spooled while they are hashed; "" means
	// os.TempDir().
	TempDir string
	// SkipUserClocks leaves a card's user clocks as they are after
	// programming (fpga.ProgramOptions.SkipUserClock): for hosts without
	// OPAE's userclk, whose images need none.
	SkipUserClocks bool
	// Fence, when set, refuses requests whose fencing token is older
	// than one it has seen (or, if it requires one, that carry none).
	Fence *Fence
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger

	lim *hostLimits
}

// hostLimits hold the semaphores of the bounds above for each host, by
// the values of the path wildcards that name it (none for one host).
type hostLimits struct {
	uploads, images int

	mu    sync.Mutex
	hosts map[string]*limits
}

type limits struct {
	uploads chan struct{}
	images  chan struct{}
}

// of returns the limits of the host key names, making them on first use.
func (l *hostLimits) of(key string) *limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.hosts[key]
	if !ok {
		h = &limits{uploads: make(chan struct{}, l.uploads), images: make(chan struct{}, l.images)}
		l.hosts[key] = h
	}
	return h
}

// wildcardName matches a wildcard of a ServeMux pattern: {node}, {rest...}.
var wildcardName = regexp.MustCompile(`\{([^{}.]+)(?:\.\.\.)?\}`)

// hostKey names the host a request under prefix is for, by the values of
// the prefix's wildcards.
func hostKey(prefix string) func(r *http.Request) string {
	var names []string
	for _, m := range wildcardName.FindAllStringSubmatch(prefix, -1) {
		names = append(names, m[1])
	}
	return func(r *http.Request) string {
		vals := make([]string, len(names))
		for i, n := range names {
			vals[i] = r.PathValue(n)
		}
		return strings.Join(vals, "/")
	}
}

// NewHandler serves the v1 API of one host at the root of the path space.
// Every answer is JSON: a path that is not clean is not redirected, as
// http.ServeMux would, but refused.
func NewHandler(h fpga.Host, s Server) http.Handler {
	s.Host = func(*http.Request) (fpga.Host, error) { return h, nil }
	mux := http.NewServeMux()
	s.Register(mux, "")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; !isCleanPath(p) {
			s.fail(w, r, Errorf(http.StatusNotFound, CodeNotFound, "no such API path %q", p))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// isCleanPath reports whether http.ServeMux would serve p as it is
// rather than redirect: rooted, without dot or empty elements.
func isCleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// Register adds the v1 routes below prefix (which may hold path
// wildcards, such as "/nodes/{node}") to mux.
func (s *Server) Register(mux *http.ServeMux, prefix string) {
	if s.lim == nil {
		s.lim = &hostLimits{
			uploads: positive(s.MaxUploads, DefaultMaxUploads),
			images:  positive(s.MaxImagesInMemory, DefaultMaxImagesInMemory),
			hosts:   map[string]*limits{},
		}
	}
	key := hostKey(prefix)
	// Reads are fenced too: a new leader's first look at a host (its
	// observation) raises the token before it plans anything.
	mux.HandleFunc("GET "+prefix+PathInventory, s.Fenced(prefix, s.inventory))
	mux.HandleFunc("POST "+prefix+PathProgram, s.Fenced(prefix, func(w http.ResponseWriter, r *http.Request) { s.program(w, r, key) }))
	mux.HandleFunc("PUT "+prefix+PathVFs, s.Fenced(prefix, s.setVFs))
	mux.HandleFunc("POST "+prefix+PathProbe, s.probe)
	mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, Errorf(http.StatusNotFound, CodeNotFound, "no such API path %s", r.URL.Path))
	})
}

func positive[T int | int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func (s *Server) maxImage() int64 { return positive(s.MaxImageBytes, DefaultMaxImageBytes) }

func (s *Server) maxJSON() int64 { return positive(s.MaxJSONBytes, DefaultMaxJSONBytes) }

func (s *Server) inventory(w http.ResponseWriter, r *http.Request) {
	h, err := s.Host(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	devs, err := h.Discover(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("discover: %w", err))
		return
	}
	if devs == nil {
		devs = []fpga.Device{}
	}
	writeJSON(w, http.StatusOK, Inventory{Devices: devs})
}

func cardPCI(r *http.Request) (string, error) {
	pci := r.PathValue("pci")
	if !fpga.IsPCIAddress(pci) {
		return "", Errorf(http.StatusBadRequest, CodeBadRequest, "PCI address %q: want the form 0000:5e:00.0", pci)
	}
	return pci, nil
}

var digestPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// program verifies an image and programs a card with it. The image,
// uploaded or fetched, goes to disk while it is hashed; only a verified
// one is read into memory, and only MaxImagesInMemory at once.
func (s *Server) program(w http.ResponseWriter, r *http.Request, hostKey func(*http.Request) string) {
	pci, err := cardPCI(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := s.programRequest(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h, err := s.Host(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lim := s.lim.of(hostKey(r)) // after Host: only hosts that exist get limits
	select {
	case lim.uploads <- struct{}{}:
		defer func() { <-lim.uploads }()
	default:
		s.busy(w, r, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "card %s: %d images are being received already; retry later", pci, cap(lim.uploads)))
		return
	}
	src, what := io.Reader(http.MaxBytesReader(w, r.Body, s.maxImage())), "image"
	if req.URL != "" {
		body, err := s.fetch(r.Context(), req.URL)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer body.Close()
		redacted := redactURL(req.URL)
		src, what = fetchFailed{r: body, url: redacted}, "image at "+redacted
	}
	f, size, err := s.spool(src, req.SHA256, what)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer f.Close()
	if err := s.programSpooled(r.Context(), h, lim, pci, f, size, req, what); err != nil {
		s.fail(w, r, fmt.Errorf("card %s: %w", pci, err))
		return
	}
	s.readBack(w, r, h, pci)
}

// programSpooled reads a verified image into memory, once one of the
// MaxImagesInMemory slots is free, and has the host program it.
func (s *Server) programSpooled(ctx context.Context, h fpga.Host, lim *limits, pci string, f io.Reader, size int64, req ProgramRequest, what string) error {
	select {
	case lim.images <- struct{}{}:
		defer func() { <-lim.images }()
	case <-ctx.Done():
		return fmt.Errorf("wait to program: %w", ctx.Err())
	}
	image := make([]byte, size)
	if _, err := io.ReadFull(f, image); err != nil {
		return fmt.Errorf("read spooled image: %w", err)
	}
	if _, err := bitstream.Parse(image); err != nil {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "%s: %v", what, err)
	}
	if err := h.Program(ctx, pci, image, fpga.ProgramOptions{SHA256: req.SHA256, Force: req.Force, SkipUserClock: s.SkipUserClocks}); err != nil {
		return fmt.Errorf("program: %w", err)
	}
	return nil
}

// programRequest reads what a program request asks for: a JSON body
// naming a URL, or an upload with its digest in the query. It reads no
// image byte.
func (s *Server) programRequest(w http.ResponseWriter, r *http.Request) (ProgramRequest, error) {
	var req ProgramRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		if err := s.decode(w, r, &req); err != nil {
			return req, err
		}
		if req.URL == "" {
			return req, Errorf(http.StatusBadRequest, CodeBadRequest, "url: required with a JSON body (upload the image as application/octet-stream instead)")
		}
	} else {
		q := r.URL.Query()
		req.SHA256 = q.Get("sha256")
		switch f := q.Get("force"); f {
		case "", "false":
		case "true":
			req.Force = true
		default:
			return req, Errorf(http.StatusBadRequest, CodeBadRequest, "force %q: want true or false", f)
		}
		if max := s.maxImage(); r.ContentLength > max {
			return req, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "image of %d bytes is over the limit of %d", r.ContentLength, max)
		}
	}
	if !digestPattern.MatchString(req.SHA256) {
		return req, Errorf(http.StatusBadRequest, CodeBadRequest, "sha256 %q: want 64 lowercase hex digits", req.SHA256)
	}
	return req, nil
}

// busy answers that the agent is at a bound, so the client retries
// later; the connection closes rather than read a body nobody wants.
func (s *Server) busy(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Retry-After", retryAfter)
	w.Header().Set("Connection", "close")
	s.fail(w, r, err)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(bad URL)"
	}
	return u.Redacted()
}

func (s *Server) setVFs(w http.ResponseWriter, r *http.Request) {
	pci, err := cardPCI(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req VFsRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Count < 0 {
		s.fail(w, r, Errorf(http.StatusBadRequest, CodeBadRequest, "count %d: want 0 or more", req.Count))
		return
	}
	h, err := s.Host(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The card says how many VFs it has; asking the host for more is the
	// client's mistake, not the host's failure.
	dev, err := findCard(r.Context(), h, pci)
	if err != nil {
		s.fail(w, r, fmt.Errorf("card %s: %w", pci, err))
		return
	}
	if req.Count > dev.TotalVFs {
		s.fail(w, r, Errorf(http.StatusBadRequest, CodeBadRequest, "card %s: count %d: want 0 to %d (sriov_totalvfs)", pci, req.Count, dev.TotalVFs))
		return
	}
	if err := h.SetVFs(r.Context(), pci, req.Count); err != nil {
		s.fail(w, r, fmt.Errorf("card %s: set VFs to %d: %w", pci, req.Count, err))
		return
	}
	s.readBack(w, r, h, pci)
}

// readBack answers a change to a card with the card as it is now.
func (s *Server) readBack(w http.ResponseWriter, r *http.Request, h fpga.Host, pci string) {
	dev, err := findCard(r.Context(), h, pci)
	if err != nil {
		s.fail(w, r, fmt.Errorf("card %s: read back: %w", pci, err))
		return
	}
	writeJSON(w, http.StatusOK, ProgramResult{Device: dev})
}

func findCard(ctx context.Context, h fpga.Host, pci string) (fpga.Device, error) {
	devs, err := h.Discover(ctx)
	if err != nil {
		return fpga.Device{}, err
	}
	for _, d := range devs {
		if d.PCI == pci {
			return d, nil
		}
	}
	return fpga.Device{}, ErrNoCard
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxJSON()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is over the limit of %d bytes", s.maxJSON())
		}
		return Errorf(http.StatusBadRequest, CodeBadRequest, "request body: %v", err)
	}
	return nil
}

// fail answers an error. Host errors keep their message (it names the
// card and what went wrong); the status comes from an *Error in the chain.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := &Error{Status: http.StatusInternalServerError, Code: CodeInternal}
	var api *Error
	switch {
	case errors.As(err, &api):
		e.Status, e.Code = api.Status, api.Code
	case errors.Is(err, fpga.ErrNoCard):
		e.Status, e.Code = http.StatusNotFound, CodeNotFound
	case errors.Is(err, fpga.ErrDigestMismatch):
		e.Status, e.Code = http.StatusUnprocessableEntity, CodeDigestMismatch
	case errors.Is(err, fpga.ErrInterfaceMismatch), errors.Is(err, fpga.ErrPortBusy),
		errors.Is(err, fpga.ErrHeld), errors.Is(err, fpga.ErrReadOnly):
		e.Status, e.Code = http.StatusConflict, CodeConflict
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.Status, e.Code = http.StatusServiceUnavailable, CodeUnavailable
	}
	e.Message = err.Error()
	if s.Log != nil {
		s.Log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code, "error", e.Message)
	}
	writeJSON(w, e.Status, ErrorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSON and Fail let other servers of this API family (the simulated
// fleet's VM API) answer the same way.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// Fail answers err as an API error.
func (s *Server) Fail(w http.ResponseWriter, r *http.Request, err error) { s.fail(w, r, err) }

// Decode reads a JSON body within the JSON size limit, refusing unknown
// fields.
func (s *Server) Decode(w http.ResponseWriter, r *http.Request, v any) error {
	return s.decode(w, r, v)
}
