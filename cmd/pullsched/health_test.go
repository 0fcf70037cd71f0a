package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// healthTarget serves /readyz with readyz (0: unknown path) and /status
// with status (empty: unknown path).
func healthTarget(t *testing.T, readyz int, status string) (listen string) {
	t.Helper()
	mux := http.NewServeMux()
	if readyz != 0 {
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(readyz) })
	}
	if status != "" {
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, status) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func runHealth(args ...string) error {
	return run(context.Background(), append([]string{"health"}, args...), io.Discard, io.Discard, os.Getenv)
}

func TestHealthProbes(t *testing.T) {
	wildcard := func(listen string) string {
		_, port, _ := net.SplitHostPort(listen)
		return "0.0.0.0:" + port
	}
	cases := []struct {
		name    string
		readyz  int
		status  string
		listen  func(string) string
		healthy bool
	}{
		{"ready", http.StatusOK, "", nil, true},
		{"not ready", http.StatusServiceUnavailable, "", nil, false},
		{"workersim ready", 0, "ready\n", nil, true},
		{"workersim busy", 0, "starting", nil, false},
		{"nothing answers the paths", 0, "", nil, false},
		{"wildcard listen is probed on loopback", http.StatusOK, "", wildcard, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			listen := healthTarget(t, tc.readyz, tc.status)
			if tc.listen != nil {
				listen = tc.listen(listen)
			}
			err := runHealth("--listen", listen)
			if (err == nil) != tc.healthy {
				t.Fatalf("health --listen %s: %v, want healthy=%v", listen, err, tc.healthy)
			}
		})
	}
}

func TestHealthURL(t *testing.T) {
	listen := healthTarget(t, http.StatusOK, "")
	if err := runHealth("--url", "http://"+listen+"/readyz"); err != nil {
		t.Fatal(err)
	}
	if err := runHealth("--url", "http://"+listen+"/nope"); err == nil {
		t.Fatal("a 404 URL was called healthy")
	}
}

// TestHealthReadsThePartsSettings: in a container the probe finds its part
// through the same PULLSCHED_LISTEN, or the same config file, the part
// reads; the file's other keys are not health's and must not fail it.
func TestHealthReadsThePartsSettings(t *testing.T) {
	listen := healthTarget(t, http.StatusOK, "")
	t.Run("env", func(t *testing.T) {
		t.Setenv("PULLSCHED_LISTEN", listen)
		if err := runHealth(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("config file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "scheduler.yaml")
		body := "brokers: [kafka:19092]\npolicy: pull\nlisten: " + listen + "\n"
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PULLSCHED_CONFIG", file)
		if err := runHealth(); err != nil {
			t.Fatal(err)
		}
		// The environment wins over the file, as for the part itself.
		t.Setenv("PULLSCHED_LISTEN", "127.0.0.1:1")
		if err := runHealth("--timeout", "1s"); err == nil {
			t.Fatal("probed the file's address although PULLSCHED_LISTEN names another")
		}
	})
}
