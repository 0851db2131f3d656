package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
)

// ServeOptions configure the controller's HTTP server. Zero durations and
// counts take the defaults below.
type ServeOptions struct {
	// Addr is the listen address; plain HTTP is refused off loopback
	// unless AllowPlainHTTP is set.
	Addr string
	// TLSCertFile and TLSKeyFile, both or neither, serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// AllowPlainHTTP serves plain HTTP off loopback, as behind a proxy
	// that terminates TLS; it is logged as a warning at start.
	AllowPlainHTTP bool

	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are
	// the http.Server's: slow clients cannot hold a connection.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// HookBodyTimeout is how long a webhook's body may take to arrive,
	// from when its headers are read.
	HookBodyTimeout time.Duration
	// MaxHookBodies bounds the webhook bodies read at once; a webhook
	// past it is answered 503 with Retry-After, its body unread.
	MaxHookBodies int
	// ReplayWindow is how long a delivery ID that triggered a run is
	// remembered; MaxDeliveries bounds how many are.
	ReplayWindow  time.Duration
	MaxDeliveries int

	// UI, when set, is served for every GET the API does not answer: the
	// dashboard at /.
	UI http.Handler

	Log *slog.Logger
}

// The server's defaults.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	// GitHub gives up on a delivery after ten seconds.
	DefaultHookBodyTimeout = 10 * time.Second
	DefaultMaxHookBodies   = 8
	DefaultReplayWindow    = 24 * time.Hour
	DefaultMaxDeliveries   = 10000
	maxHeaderBytes         = 64 << 10
)

func (o ServeOptions) withDefaults() ServeOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&o.ReadTimeout, DefaultReadTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.HookBodyTimeout, DefaultHookBodyTimeout)
	def(&o.ReplayWindow, DefaultReplayWindow)
	if o.MaxHookBodies <= 0 {
		o.MaxHookBodies = DefaultMaxHookBodies
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = DefaultMaxDeliveries
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server is the controller's HTTP server: a controller's Handler behind
// timeouts, over TLS when configured.
type Server struct {
	opts ServeOptions
	tls  *tls.Config

	mu     sync.Mutex
	srv    *http.Server // set by Serve
	closed bool         // Shutdown came first
}

// NewServer checks the options, every mistake at once, and loads the TLS
// certificate, before anything is started. Plain HTTP off loopback is
// refused: webhook secrets and the admin token would cross the network in
// clear.
func NewServer(opts ServeOptions) (*Server, error) {
	opts = opts.withDefaults()
	var (
		errs []error
		conf *tls.Config
	)
	switch {
	case (opts.TLSCertFile == "") != (opts.TLSKeyFile == ""):
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	case opts.TLSCertFile != "":
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--tls-cert, --tls-key: %w", err))
		}
		conf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if opts.AllowPlainHTTP {
			errs = append(errs, errors.New("--allow-plain-http and --tls-cert exclude each other"))
		}
	case !agentapi.IsLoopback(opts.Addr) && !opts.AllowPlainHTTP:
		errs = append(errs, fmt.Errorf("--listen %s: plain HTTP off loopback would send webhook secrets and the admin token in clear: give --tls-cert and --tls-key, or --allow-plain-http behind a proxy that terminates TLS", opts.Addr))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Server{opts: opts, tls: conf}, nil
}

// SetUI sets ServeOptions.UI, the dashboard, made once the controller
// is; call it before Serve.
func (s *Server) SetUI(ui http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.UI = ui
}

// Scheme is "https" or "http".
func (s *Server) Scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// Serve serves c's API on ln until Shutdown; it then returns
// http.ErrServerClosed. A Server serves once.
func (s *Server) Serve(ln net.Listener, c *Controller) error {
	s.mu.Lock()
	o := s.opts
	s.mu.Unlock()
	if s.tls == nil && !agentapi.IsLoopback(o.Addr) {
		o.Log.Warn("serving plain HTTP off loopback (--allow-plain-http): webhook secrets and the admin token cross the network in clear unless a proxy terminates TLS", "listen", o.Addr)
	}
	srv := &http.Server{
		Handler:           c.handler(o),
		TLSConfig:         s.tls,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelInfo),
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	case s.srv != nil:
		s.mu.Unlock()
		return errors.New("controller: the server serves once")
	}
	s.srv = srv
	s.mu.Unlock()
	if s.tls != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// Shutdown stops the server, waiting for requests in flight until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.closed = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}
