package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// addPprofFlag gives every part with an HTTP server a --pprof address for
// Go's profiler, off by default: profiles of each process are what tell
// where the chain spends its CPU (docs/BENCHMARKS.md).
func addPprofFlag(fs *flag.FlagSet, c *common) {
	if fs.Lookup("listen") == nil {
		return
	}
	fs.StringVar(&c.pprof, "pprof", "", "host:port to serve Go's profiler on (/debug/pprof/), e.g. 127.0.0.1:6060; empty: off")
}

// startPprof serves /debug/pprof/ on addr until ctx ends. It binds at once,
// so a taken address fails the command instead of going unnoticed.
func startPprof(ctx context.Context, addr string, c *common) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Warn().Err(err).Msg("pprof server stopped")
		}
	}()
	c.log.Info().Str("pprof", "http://"+ln.Addr().String()+"/debug/pprof/").Msg("profiler serving")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}
