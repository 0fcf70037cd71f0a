package it

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKafkaContainerEnv: the broker listens and advertises on loopback at
// the ports it was given, with the settings scripts/kafka.sh uses.
func TestKafkaContainerEnv(t *testing.T) {
	env := kafkaContainerEnv(40001, 40002)
	want := map[string]string{
		"KAFKA_LISTENERS":                        "PLAINTEXT://127.0.0.1:40001,CONTROLLER://127.0.0.1:40002",
		"KAFKA_ADVERTISED_LISTENERS":             "PLAINTEXT://127.0.0.1:40001",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":         "1@127.0.0.1:40002",
		"KAFKA_PROCESS_ROLES":                    "broker,controller",
		"KAFKA_NUM_PARTITIONS":                   "3",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if env["CLUSTER_ID"] == "" {
		t.Error("no CLUSTER_ID: apache/kafka would format with a random one")
	}
	for k := range env {
		if !strings.HasPrefix(k, "KAFKA_") && k != "CLUSTER_ID" {
			t.Errorf("%s is neither a KAFKA_ setting nor CLUSTER_ID", k)
		}
	}
}

func TestFreePorts(t *testing.T) {
	ps, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ps {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: want 3 distinct positive ports", ps)
		}
		seen[p] = true
	}
}

// fakeEngine serves a Docker API on a unix socket: images named in have
// answer inspection, and a pull answers with pull (status, body).
func fakeEngine(t *testing.T, have map[string]bool, pullStatus int, pullBody string) (pulls *[]string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/images/") && strings.HasSuffix(r.URL.Path, "/json"):
			name, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/images/"), "/json"))
			if have[name] {
				_, _ = w.Write([]byte(`{"Id":"sha256:1"}`))
				return
			}
			http.Error(w, `{"message":"No such image"}`, http.StatusNotFound)
		case r.Method == http.MethodPost && r.URL.Path == "/images/create":
			got = append(got, r.URL.Query().Get("fromImage")+":"+r.URL.Query().Get("tag"))
			w.WriteHeader(pullStatus)
			_, _ = w.Write([]byte(pullBody))
		default:
			http.NotFound(w, r)
		}
	}), ReadHeaderTimeout: time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return &got
}

// unsetRyuk clears EnvRyukDisabled for the test and restores it after.
func unsetRyuk(t *testing.T) {
	t.Setenv(EnvRyukDisabled, "")
	if err := os.Unsetenv(EnvRyukDisabled); err != nil {
		t.Fatal(err)
	}
}

// TestDecideRyuk: the reaper stays on when its image is there or can be
// pulled, is turned off (and says why) when it cannot be had, and a user's
// setting is never overridden.
func TestDecideRyuk(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const reaper = "testcontainers/ryuk:0.14.0"

	t.Run("image present", func(t *testing.T) {
		unsetRyuk(t)
		fakeEngine(t, map[string]bool{reaper: true}, http.StatusOK, "")
		if got := decideRyuk(ctx); !strings.HasPrefix(got, "ryuk on") {
			t.Fatalf("decideRyuk = %q, want ryuk on", got)
		}
		if _, set := os.LookupEnv(EnvRyukDisabled); set {
			t.Fatalf("%s set though ryuk can run", EnvRyukDisabled)
		}
	})
	t.Run("pulled", func(t *testing.T) {
		unsetRyuk(t)
		pulls := fakeEngine(t, nil, http.StatusOK, `{"status":"Pulling"}`+"\n"+`{"status":"Downloaded newer image"}`)
		if got := decideRyuk(ctx); !strings.HasPrefix(got, "ryuk on") {
			t.Fatalf("decideRyuk = %q, want ryuk on", got)
		}
		if len(*pulls) != 1 || (*pulls)[0] != reaper {
			t.Fatalf("pulls %v, want [%s]", *pulls, reaper)
		}
	})
	for _, tc := range []struct {
		name   string
		status int
		body   string
		why    string
	}{
		{"no registry", http.StatusInternalServerError, `{"message":"dial tcp: lookup registry-1.docker.io: no such host"}`, "no such host"},
		{"pull stream error", http.StatusOK, `{"status":"Pulling"}` + "\n" + `{"error":"manifest unknown"}`, "manifest unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unsetRyuk(t)
			fakeEngine(t, nil, tc.status, tc.body)
			got := decideRyuk(ctx)
			if !strings.HasPrefix(got, "ryuk off") || !strings.Contains(got, tc.why) {
				t.Fatalf("decideRyuk = %q, want ryuk off naming %q", got, tc.why)
			}
			if v := os.Getenv(EnvRyukDisabled); v != "true" {
				t.Fatalf("%s = %q, want true", EnvRyukDisabled, v)
			}
		})
	}
	t.Run("user setting kept", func(t *testing.T) {
		t.Setenv(EnvRyukDisabled, "false")
		pulls := fakeEngine(t, nil, http.StatusInternalServerError, `{"message":"no registry"}`)
		if got := decideRyuk(ctx); !strings.Contains(got, "set by the environment") {
			t.Fatalf("decideRyuk = %q, want the user's setting", got)
		}
		if os.Getenv(EnvRyukDisabled) != "false" || len(*pulls) != 0 {
			t.Fatalf("user setting changed (%q) or pull tried (%v)", os.Getenv(EnvRyukDisabled), *pulls)
		}
	})
}

func TestKafkaImage(t *testing.T) {
	t.Setenv(EnvKafkaImage, "")
	if got := kafkaImage(); got != DefaultKafkaImage || !strings.HasPrefix(got, "apache/kafka:") {
		t.Fatalf("kafkaImage() = %q, want %q (apache/kafka)", got, DefaultKafkaImage)
	}
	t.Setenv(EnvKafkaImage, "pullsched-ci/kafka:4.4.0")
	if got := kafkaImage(); got != "pullsched-ci/kafka:4.4.0" {
		t.Fatalf("kafkaImage() = %q with %s set", got, EnvKafkaImage)
	}
}
