package agent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// ParseFetchAllow reads --fetch-allow values: each a comma-separated list
// of HOST or HOST:PORT (an IPv6 address in brackets). A HOST alone allows
// the URL scheme's default port only (80 for http, 443 for https). It
// returns the entries lowercased, and every bad one at once.
func ParseFetchAllow(values []string) ([]string, error) {
	var (
		allow []string
		errs  []error
	)
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			e = strings.ToLower(strings.TrimSpace(e))
			if e == "" {
				continue
			}
			if _, _, err := splitAllowEntry(e); err != nil {
				errs = append(errs, fmt.Errorf("--fetch-allow %q: %w", e, err))
				continue
			}
			allow = append(allow, e)
		}
	}
	return allow, errors.Join(errs...)
}

// splitAllowEntry splits HOST[:PORT] and checks it names a host and
// nothing else: no scheme, path, user or wildcard.
func splitAllowEntry(e string) (host, port string, err error) {
	u, perr := url.Parse("http://" + e)
	if perr != nil || u.Host != e || u.Hostname() == "" || strings.ContainsAny(u.Hostname(), "*/@") {
		return "", "", errors.New("want HOST or HOST:PORT")
	}
	host, port = u.Hostname(), u.Port()
	if strings.HasSuffix(e, ":") {
		return "", "", errors.New("want HOST or HOST:PORT")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("port %s: want 1 to 65535", port)
		}
	}
	return host, port, nil
}

// defaultPort is the port a URL without one reaches.
func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// fetchAllowed reports whether an http(s) URL's host and port are in allow.
func fetchAllowed(allow []string, u *url.URL) bool {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = defaultPort(u.Scheme)
	}
	for _, e := range allow {
		h, p, err := splitAllowEntry(e)
		if err != nil || !strings.EqualFold(h, host) {
			continue
		}
		if p == port || (p == "" && port == defaultPort(u.Scheme)) {
			return true
		}
	}
	return false
}

// checkFetchURL refuses a URL that is not http(s) or whose host the
// agent was not told to trust.
func (s *Server) checkFetchURL(u *url.URL) error {
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "url %q: want an http or https URL", u.Redacted())
	}
	if len(s.FetchAllow) == 0 {
		return Errorf(http.StatusForbidden, CodeForbidden, "url %s: fetching images by URL is off: start the agent with --fetch-allow HOST[:PORT]", u.Redacted())
	}
	if !fetchAllowed(s.FetchAllow, u) {
		return Errorf(http.StatusForbidden, CodeForbidden, "url %s: host %s is not in --fetch-allow", u.Redacted(), net.JoinHostPort(u.Hostname(), cmp.Or(u.Port(), defaultPort(u.Scheme))))
	}
	return nil
}

// maxRedirects bounds the redirects a fetch follows, each to an allowed
// host.
const maxRedirects = 5

// fetchClient is s.Fetch (or a default one) that follows a redirect only
// to a host the agent trusts.
func (s *Server) fetchClient() *http.Client {
	c := &http.Client{Timeout: DefaultFetchTimeout}
	if s.Fetch != nil {
		copied := *s.Fetch
		c = &copied
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return Errorf(http.StatusBadGateway, CodeFetchFailed, "stopped after %d redirects", maxRedirects)
		}
		return s.checkFetchURL(req.URL)
	}
	return c
}

// fetch opens an image at an allowed http(s) URL.
func (s *Server) fetch(ctx context.Context, raw string) (io.ReadCloser, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "url: want an http or https URL: %v", err)
	}
	if err := s.checkFetchURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, CodeBadRequest, "url %s: %v", u.Redacted(), err)
	}
	resp, err := s.fetchClient().Do(req)
	if err != nil {
		var api *Error
		if errors.As(err, &api) {
			return nil, api
		}
		return nil, Errorf(http.StatusBadGateway, CodeFetchFailed, "fetch %s: %v", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, Errorf(http.StatusBadGateway, CodeFetchFailed, "fetch %s: %s", u.Redacted(), resp.Status)
	}
	if resp.ContentLength > s.maxImage() {
		resp.Body.Close()
		return nil, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "image at %s is %d bytes, over the limit of %d", u.Redacted(), resp.ContentLength, s.maxImage())
	}
	return resp.Body, nil
}

// spool copies an image from src into an unlinked temporary file while
// hashing it, refusing it once it passes the size limit, and checks its
// sha256 against want. On success the file is positioned at its start;
// the caller closes it, which frees its space. Nothing of the image stays
// in memory.
func (s *Server) spool(src io.Reader, want, what string) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.TempDir, "fpgaops-image-*")
	if err != nil {
		return nil, 0, fmt.Errorf("spool image: %w", err)
	}
	// Unlinked at once: a crash leaves nothing behind.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("spool image: %w", err)
	}
	max := s.maxImage()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(src, max+1))
	switch {
	case err != nil:
		f.Close()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, 0, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "%s is over the limit of %d bytes", what, max)
		}
		var api *Error
		if errors.As(err, &api) {
			return nil, 0, api
		}
		return nil, 0, Errorf(http.StatusBadRequest, CodeBadRequest, "read %s: %v", what, err)
	case n > max:
		f.Close()
		return nil, 0, Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "%s is over the limit of %d bytes", what, max)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		f.Close()
		return nil, 0, Errorf(http.StatusUnprocessableEntity, CodeDigestMismatch, "%s has sha256 %s, want %s", what, got, want)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("spool image: %w", err)
	}
	return f, n, nil
}

// fetchFailed marks read errors of a fetched body as the fetch's, so
// that spool answers 502 for them rather than blaming the client.
type fetchFailed struct {
	r   io.Reader
	url string
}

func (f fetchFailed) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		err = Errorf(http.StatusBadGateway, CodeFetchFailed, "fetch %s: %v", f.url, err)
	}
	return n, err
}
