package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"time"

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
	// Fetch is the client that fetches images given by URL; nil means a
	// client with DefaultFetchTimeout.
	Fetch *http.Client
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger
}

// NewHandler serves the v1 API of one host at the root of the path space.
func NewHandler(h fpga.Host, s Server) http.Handler {
	s.Host = func(*http.Request) (fpga.Host, error) { return h, nil }
	mux := http.NewServeMux()
	s.Register(mux, "")
	return mux
}

// Register adds the v1 routes below prefix (which may hold path
// wildcards, such as "/nodes/{node}") to mux.
func (s *Server) Register(mux *http.ServeMux, prefix string) {
	mux.HandleFunc("GET "+prefix+PathInventory, s.inventory)
	mux.HandleFunc("POST "+prefix+PathProgram, s.program)
	mux.HandleFunc("PUT "+prefix+PathVFs, s.setVFs)
	mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, Errorf(http.StatusNotFound, CodeNotFound, "no such API path %s", r.URL.Path))
	})
}

func (s *Server) maxImage() int64 {
	if s.MaxImageBytes > 0 {
		return s.MaxImageBytes
	}
	return DefaultMaxImageBytes
}

func (s *Server) maxJSON() int64 {
	if s.MaxJSONBytes > 0 {
		return s.MaxJSONBytes
	}
	return DefaultMaxJSONBytes
}

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

func (s *Server) program(w http.ResponseWriter, r *http.Request) {
	pci, err := cardPCI(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var (
		image []byte
		want  string
		force bool
	)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var req ProgramRequest
		if err := s.decode(w, r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		want, force = req.SHA256, req.Force
		if !digestPattern.MatchString(want) {
			s.fail(w, r, Errorf(http.StatusBadRequest, CodeBadRequest, "sha256 %q: want 64 lowercase hex digits", want))
			return
		}
		if image, err = s.fetch(r.Context(), req.URL); err != nil {
			s.fail(w, r, err)
			return
		}
	} else {
		want = r.URL.Query().Get("sha256")
		force = r.URL.Query().Get("force") == "true"
		if !digestPattern.MatchString(want) {
			s.fail(w, r, Errorf(http.StatusBadRequest, CodeBadRequest, "sha256 %q: want 64 lowercase hex digits", want))
			return
		}
		if image, err = s.readImage(w, r); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	// The digest is checked before the host sees a byte of the image.
	if got := digest(image); got != want {
		s.fail(w, r, Errorf(http.StatusUnprocessableEntity, CodeDigestMismatch, "image has sha256 %s, want %s", got, want))
		return
	}
	h, err := s.Host(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := h.Program(r.Context(), pci, image, fpga.ProgramOptions{SHA256: want, Force: force}); err != nil {
		s.fail(w, r, fmt.Errorf("card %s: program: %w", pci, err))
		return
	}
	s.readBack(w, r, h, pci)
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

// readImage reads an uploaded image, refusing it as soon as it is larger
// than the limit.
func (s *Server) readImage(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	max := s.maxImage()
	if r.ContentLength > max {
		return nil, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "image of %d bytes is over the limit of %d", r.ContentLength, max)
	}
	body := http.MaxBytesReader(w, r.Body, max)
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "image is over the limit of %d bytes", max)
		}
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "read image: %v", err)
	}
	return buf.Bytes(), nil
}

// fetch gets an image from an http(s) URL, within the size limit.
func (s *Server) fetch(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "url %q: want an http or https URL", raw)
	}
	c := s.Fetch
	if c == nil {
		c = &http.Client{Timeout: DefaultFetchTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "url: %v", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, Errorf(http.StatusBadGateway, CodeFetchFailed, "fetch %s: %v", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, Errorf(http.StatusBadGateway, CodeFetchFailed, "fetch %s: %s", u.Redacted(), resp.Status)
	}
	max := s.maxImage()
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, Errorf(http.StatusBadGateway, CodeFetchFailed, "fetch %s: %v", u.Redacted(), err)
	}
	if int64(len(data)) > max {
		return nil, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "image at %s is over the limit of %d bytes", u.Redacted(), max)
	}
	return data, nil
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

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
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
