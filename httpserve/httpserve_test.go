package httpserve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestHandleMapsErrors(t *testing.T) {
	cases := []struct {
		name   string
		h      HandlerFunc
		body   string
		status int
		header string
	}{
		{"ok", func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(204); return nil }, "", 204, ""},
		{"typed", func(http.ResponseWriter, *http.Request) error {
			return &Error{Status: 429, Msg: "overloaded", Header: http.Header{"Retry-After": {"1"}}}
		}, "", 429, "1"},
		{"too large", func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4))
			return err
		}, "0123456789", 413, ""},
		{"other", func(http.ResponseWriter, *http.Request) error { return errors.New("boom") }, "", 500, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handle(zerolog.Nop(), c.h).ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader(c.body)))
			if rec.Code != c.status || rec.Header().Get("Retry-After") != c.header {
				t.Fatalf("status %d header %q", rec.Code, rec.Header().Get("Retry-After"))
			}
			if c.status >= 400 {
				var m map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["error"] == "" {
					t.Fatalf("body %q is not a JSON error", rec.Body)
				}
			}
		})
	}
}

func TestServeAndShutdown(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	get := func(path string) int {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 503 {
		t.Fatal("health before ready")
	}
	s.SetReady(true)
	if get("/readyz") != 200 || get("/metrics") != 200 {
		t.Fatal("ready or metrics")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
