package invokerbridge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pullsched/pullsched/topics"
)

// BenchmarkSidecarRoundTrip measures assignments per second through one
// sidecar bridge on the embedded broker against a worker that answers at
// once: consume, call, publish completion and result, commit. Each op is
// one assignment, timed from its publication to its result.
func BenchmarkSidecarRoundTrip(b *testing.B) {
	e, id := benchSidecar(b, nil)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range ids {
		a := &topics.Assignment{ID: topics.NewID(), Function: "f", Worker: id, Reply: reply, Payload: []byte(`{}`)}
		ids[i] = a.ID
		e.prod.PublishAsync(ctx, e.names.Invoker(id), a, func(err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	e.rec.until("all results", func() bool { return len(e.rec.results) >= b.N })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "assignments/s")
}

// benchSidecar starts a sidecar bridge (config changed by mutate, if
// given) in front of a no-op worker on the embedded broker and returns the
// environment and the worker's id.
func benchSidecar(b *testing.B, mutate func(*Config)) (*env, string) {
	b.Helper()
	worker := noopWorker()
	b.Cleanup(worker.Close)
	e := newEnv(b)
	cfg := e.config()
	cfg.Logger = zerolog.Nop()
	cfg.WorkerURL = worker.URL
	if mutate != nil {
		mutate(&cfg)
	}
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e.start(br)
	return e, br.cfg.WorkerID
}

// noopWorker answers every call at once with a small JSON body.
func noopWorker() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/status" {
			_, _ = io.WriteString(w, "ready\n")
			return
		}
		w.Header().Set("X-Cold-Start", "0")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
}

// BenchmarkSidecarOneAtATime sends one assignment at a time through a
// sidecar bridge on the embedded broker, each after the previous one's
// result came back: the low-rate case, where nothing batches by itself.
// Besides time per assignment it reports the produce requests the broker
// received per assignment (all clients: the bridge's result and
// completion, the test's own assignment, heartbeats) and the CPU time of
// the whole process (broker, bridge, worker and test) per assignment.
func BenchmarkSidecarOneAtATime(b *testing.B) {
	e, id := benchSidecar(b, func(cfg *Config) { cfg.HeartbeatInterval = time.Second })
	var produces atomic.Int64
	c := e.b.Cluster()
	c.ControlKey(kmsg.Produce.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produces.Add(1)
		return nil, nil, false
	})
	ctx := context.Background()
	one := func(n int) {
		a := &topics.Assignment{ID: topics.NewID(), Function: "f", Worker: id, Reply: reply, Payload: []byte(`{}`)}
		if err := e.prod.Publish(ctx, e.names.Invoker(id), a); err != nil {
			b.Fatal(err)
		}
		e.rec.until("result", func() bool { return len(e.rec.results) >= n })
	}
	one(1) // connections made, partition held
	b.ReportAllocs()
	produces.Store(0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		one(i + 2)
	}
	b.StopTimer()
	b.ReportMetric(float64(produces.Load())/float64(b.N), "produces/op")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
