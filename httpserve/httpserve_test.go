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

// A failing readiness check makes /readyz answer 503 with its reason while
// the server is ready; nil removes it.
func TestReadyCheck(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	probe := func() (int, map[string]string) {
		rec := httptest.NewRecorder()
		s.Mux().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var m map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
		return rec.Code, m
	}
	var failing error
	s.SetReadyCheck(func() error { return failing })
	cases := []struct {
		name   string
		ready  bool
		err    error
		status int
		reason string
	}{
		{"not ready", false, nil, 503, ""},
		{"ready, check passes", true, nil, 200, ""},
		{"ready, check fails", true, errors.New("arrivals[0] stuck"), 503, "arrivals[0] stuck"},
		{"not ready, check fails", false, errors.New("arrivals[0] stuck"), 503, ""},
	}
	for _, c := range cases {
		s.SetReady(c.ready)
		failing = c.err
		if code, m := probe(); code != c.status || m["reason"] != c.reason {
			t.Errorf("%s: %d %v, want %d with reason %q", c.name, code, m, c.status, c.reason)
		}
	}
	s.SetReady(true)
	failing = errors.New("stuck")
	s.SetReadyCheck(nil)
	if code, _ := probe(); code != 200 {
		t.Errorf("check removed: %d, want 200", code)
	}
}
