package invokerbridge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/topics"
)

// BenchmarkSidecarRoundTrip measures assignments per second through one
// sidecar bridge on the embedded broker against a worker that answers at
// once: consume, call, publish completion and result, commit. Each op is
// one assignment, timed from its publication to its result.
func BenchmarkSidecarRoundTrip(b *testing.B) {
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/status" {
			_, _ = io.WriteString(w, "ready\n")
			return
		}
		w.Header().Set("X-Cold-Start", "0")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer worker.Close()
	e := newEnv(b)
	cfg := e.config()
	cfg.Logger = zerolog.Nop()
	cfg.WorkerURL = worker.URL
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e.start(br)
	id := br.cfg.WorkerID
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
