package it

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestHarnessRoundTrip proves the chosen broker works end to end: a topic
// under the test's prefix is created, a record is produced with acks=all,
// and a consumer group reads it back and commits.
func TestHarnessRoundTrip(t *testing.T) {
	env := Broker(t)
	if len(env.Seeds) == 0 {
		t.Fatal("Broker returned no seeds")
	}
	topic := env.Topic("roundtrip")
	env.CreateTopic(t, topic, 3)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod := env.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()))
	want := &kgo.Record{Topic: topic, Key: []byte("fn-a"), Value: []byte(`{"v":1}`),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
	if err := prod.ProduceSync(ctx, want).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	group := env.Prefix + "group"
	cons := env.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	var got *kgo.Record
	for got == nil {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record before %v", ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		if recs := fs.Records(); len(recs) > 0 {
			got = recs[0]
		}
	}
	if string(got.Key) != "fn-a" || string(got.Value) != `{"v":1}` ||
		len(got.Headers) != 1 || got.Headers[0].Key != "h" || string(got.Headers[0].Value) != "x" {
		t.Fatalf("round trip changed the record: key %q value %q headers %v", got.Key, got.Value, got.Headers)
	}
	if err := cons.CommitRecords(ctx, got); err != nil {
		t.Fatalf("commit: %v", err)
	}
	offs, err := env.Admin(t).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	if o, ok := offs.Lookup(topic, got.Partition); !ok || o.At != got.Offset+1 {
		t.Fatalf("committed offset %+v (found %v), want %d", o, ok, got.Offset+1)
	}
}

// TestBrokersAreIsolated checks that two tests' Envs never share a prefix.
func TestBrokersAreIsolated(t *testing.T) {
	var a, b Env
	t.Run("a", func(t *testing.T) { a = Broker(t) })
	t.Run("b", func(t *testing.T) { b = Broker(t) })
	if a.Prefix == b.Prefix {
		t.Fatalf("two tests got the same prefix %q", a.Prefix)
	}
	if a.Kind != b.Kind {
		t.Fatalf("broker kind changed within one binary: %s then %s", a.Kind, b.Kind)
	}
}

func TestTopicPrefix(t *testing.T) {
	legal := regexp.MustCompile(`^it-[a-zA-Z0-9_-]+-[0-9a-f]{8}\.$`)
	seen := map[string]bool{}
	for _, name := range []string{"plain", "with spaces/and#signs", strings.Repeat("long", 30)} {
		t.Run(name, func(t *testing.T) {
			p := TopicPrefix(t)
			if !legal.MatchString(p) {
				t.Fatalf("prefix %q is not a legal topic prefix", p)
			}
			if len(p) > 100 {
				t.Fatalf("prefix %q is %d chars; topic names must stay under 249", p, len(p))
			}
			if seen[p] {
				t.Fatalf("prefix %q repeated", p)
			}
			seen[p] = true
		})
	}
}

func TestDockerAddr(t *testing.T) {
	tests := []struct {
		host, network, addr string
		ok                  bool
	}{
		{"unix:///tmp/d.sock", "unix", "/tmp/d.sock", true},
		{"tcp://127.0.0.1:2375", "tcp", "127.0.0.1:2375", true},
		{"ssh://user@host", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.host)
			network, addr, err := dockerAddr()
			if (err == nil) != tt.ok || network != tt.network || addr != tt.addr {
				t.Fatalf("dockerAddr() = %q, %q, %v; want %q, %q, ok=%v", network, addr, err, tt.network, tt.addr, tt.ok)
			}
		})
	}
}

// TestPingDocker runs a fake engine on a unix socket: /_ping answers 200
// only when the fake is healthy, and a missing socket fails fast.
func TestPingDocker(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	t.Setenv("DOCKER_HOST", "unix://"+sock)
	if err := pingDocker(ctx); err == nil {
		t.Fatal("ping succeeded with no socket")
	}

	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var healthy atomic.Bool
	healthy.Store(true)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_ping" || !healthy.Load() {
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("OK"))
	}), ReadHeaderTimeout: time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })

	if err := pingDocker(ctx); err != nil {
		t.Fatalf("ping of a healthy fake engine: %v", err)
	}
	healthy.Store(false)
	if err := pingDocker(ctx); err == nil {
		t.Fatal("ping of an unhealthy fake engine succeeded")
	}
}
