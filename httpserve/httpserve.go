package httpserve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Config configures a Server.
type Config struct {
	// Addr is the host:port to listen on. Required ("127.0.0.1:0" picks a
	// free port).
	Addr string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound a
	// connection's phases. Defaults 5s, 30s, 5m (a blocking /run waits for
	// its function), 2m.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds the drain of in-flight requests on shutdown.
	// Default 10s.
	ShutdownTimeout time.Duration
	// Logger receives server errors. Default: none.
	Logger zerolog.Logger
}

// Server is an HTTP server with /healthz, /readyz and /metrics.
type Server struct {
	cfg   Config
	mux   *http.ServeMux
	reg   *prometheus.Registry
	ready atomic.Bool
	check atomic.Pointer[func() error]
	ln    net.Listener
	srv   *http.Server
}

// New creates a server and binds its address, so Addr is known at once.
// The part adds its routes to Mux and its metrics to Registry, then calls
// Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		return nil, errors.New("httpserve: no listen address")
	}
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Minute
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), reg: prometheus.NewRegistry(), ln: ln}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		if f := s.check.Load(); f != nil {
			if err := (*f)(); err != nil {
				WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
				return
			}
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          nil,
	}
	return s, nil
}

// Addr is the bound address (with the real port when 0 was asked).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Mux is where the part registers its routes.
func (s *Server) Mux() *http.ServeMux { return s.mux }

// Registry is the part's own Prometheus registry (parts that share a
// process, as in `pullsched dev`, do not mix their metrics).
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// SetReady flips what /readyz answers.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// SetReadyCheck adds a check /readyz runs on every probe while the server is
// ready: an error makes it answer 503 with the error as the reason (a part
// that cannot make progress says so). nil removes the check. It must be
// cheap and safe to call from any goroutine.
func (s *Server) SetReadyCheck(check func() error) {
	if check == nil {
		s.check.Store(nil)
		return
	}
	s.check.Store(&check)
}

// Serve serves until ctx ends, then stops being ready, drains in-flight
// requests for at most ShutdownTimeout and closes. It returns nil on a
// clean stop.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	s.SetReady(false)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.cfg.Logger.Warn().Str("addr", s.Addr()).Msg("drain deadline passed; closing open connections")
		err = s.srv.Close()
	}
	<-errc
	return err
}

// Close closes the listener of a server that was never served.
func (s *Server) Close() error { return s.ln.Close() }

// Error is an error with the HTTP status it should be answered with.
type Error struct {
	Status int
	Msg    string
	// Header is added to the answer (e.g. Retry-After).
	Header http.Header
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// HandlerFunc is an error-returning handler.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts an error-returning handler: an *Error becomes its status
// with a JSON body {"error": msg}; an oversized body (http.MaxBytesError)
// becomes 413; any other error 500, logged.
func Handle(log zerolog.Logger, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *Error
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &he):
			for k, vs := range he.Header {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
			WriteJSON(w, he.Status, map[string]string{"error": he.Error()})
		case errors.As(err, &mb):
			WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("body larger than %d bytes", mb.Limit)})
		default:
			log.Error().Err(err).Str("path", r.URL.Path).Msg("request failed")
			WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		}
	})
}

// WriteJSON writes v as a JSON answer with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
