package workersim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Name returns the worker id reported in X-Worker and answers.
func (s *Sim) Name() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.name == "" {
		return "workersim"
	}
	return s.name
}

// Advertise returns the host:port put in eviction notices.
func (s *Sim) Advertise() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertise
}

// setListenAddr fills the defaults of Name and Advertise from the listener.
func (s *Sim) setListenAddr(addr net.Addr) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	hp := net.JoinHostPort(host, port)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.advertise == "" {
		s.advertise = hp
	}
	if s.name == "" {
		s.name = s.advertise
	}
}

// Run listens on addr and serves the worker API until ctx ends, as Serve.
func (s *Sim) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("workersim: listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the worker API on ln until ctx ends, then drains in-flight
// requests for up to Config.ShutdownTimeout and closes the simulator. It
// fills in Name and Advertise from ln's address when they are unset. It
// returns nil after a clean shutdown.
func (s *Sim) Serve(ctx context.Context, ln net.Listener) error {
	s.setListenAddr(ln.Addr())
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	s.log.Info().Str("addr", ln.Addr().String()).Str("name", s.Name()).Msg("workersim serving")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = s.Close()
		return fmt.Errorf("workersim: serve: %w", err)
	case <-ctx.Done():
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(drainCtx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("workersim: shutdown: %w", err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("workersim: serve: %w", serr)
	}
	_ = s.Close()
	return err
}
