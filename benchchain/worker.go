package benchchain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// noopWorker is an OpenLambda worker whose functions do nothing: POST or GET
// /run/<fn> answers 200 {} at once, GET /status answers "ready" (what an
// invoker bridge's health check asks).
type noopWorker struct {
	ln  net.Listener
	srv *http.Server
}

// newNoopWorker starts a worker listening on addr (host:port; port 0: a
// free one).
func newNoopWorker(addr string) (*noopWorker, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("benchchain: no-op worker: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/run/", serveNoop)
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ready"))
	})
	w := &noopWorker{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}}
	go func() {
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener closed under it: nothing to report to
		}
	}()
	return w, nil
}

var noopBody = []byte("{}")

func serveNoop(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "use POST or GET", http.StatusMethodNotAllowed)
		return
	}
	if strings.TrimPrefix(r.URL.Path, "/run/") == "" {
		http.Error(w, "no function", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(noopBody)
}

// URL is the worker's base URL.
func (w *noopWorker) URL() string { return "http://" + w.ln.Addr().String() }

// Addr is the worker's host:port.
func (w *noopWorker) Addr() string { return w.ln.Addr().String() }

func (w *noopWorker) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = w.srv.Shutdown(ctx)
}
