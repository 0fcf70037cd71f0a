package invokerbridge

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// A pool bridge serves admin-added workers as they come (and, after a
// restart, those whose only record left is a bridge's heartbeat), and
// finishes and stops serving a worker when the admin API removes it.
func TestPoolFollowsAdminWorkers(t *testing.T) {
	e := newEnv(t)
	s1 := newSim(t, workersim.Config{})
	s2 := newSim(t, workersim.Config{})
	id1, id2 := s1.workerID(t), s2.workerID(t)
	// What an earlier pool bridge left for s2 (as if compaction dropped the
	// admin's own record): a draining heartbeat of an admin-added worker.
	e.publish(e.names.Workers(), &topics.Worker{ID: id2, URL: s2.srv.URL, State: topics.WorkerDraining,
		Source: topics.SourceAdmin, Bridge: "old-pool", At: time.Now()})
	// A sidecar worker is not the pool's business.
	e.publish(e.names.Workers(), &topics.Worker{ID: "sidecar-w", URL: "http://127.0.0.1:1", State: topics.WorkerActive,
		Source: topics.SourceSidecar, Bridge: "someone", At: time.Now()})

	cfg := e.config()
	cfg.Pool = true
	cfg.ID = "pool-test"
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := e.start(b)

	e.rec.worker(id2, "adopted by the pool", func(w *topics.Worker) bool {
		return w.Bridge == "pool-test" && w.State == topics.WorkerActive && w.Healthy && w.Source == topics.SourceAdmin
	})
	if r := e.rec.result(e.assign(id2, "linpack", nil).ID); r.Status != 200 || r.Worker != id2 {
		t.Errorf("s2 result %+v", r)
	}

	// The admin API adds s1.
	e.publish(e.names.Workers(), &topics.Worker{ID: id1, URL: s1.srv.URL, State: topics.WorkerActive,
		Source: topics.SourceAdmin, At: time.Now()})
	hb := e.rec.worker(id1, "served by the pool", func(w *topics.Worker) bool {
		return w.Bridge == "pool-test" && w.State == topics.WorkerActive && w.Healthy
	})
	if hb.Source != topics.SourceAdmin || hb.URL != s1.srv.URL || hb.Capacity != 0 {
		t.Errorf("heartbeat %+v", hb)
	}
	a := e.assign(id1, "gzip_compression", nil)
	if r := e.rec.result(a.ID); r.Status != 200 || r.Worker != id1 || r.Start != topics.StartCold {
		t.Errorf("s1 result %+v", r)
	}
	if got := s1.s.Stats().Invocations; got != 1 {
		t.Errorf("s1 ran %d invocations, want 1", got)
	}

	notice := func(host string) int {
		t.Helper()
		resp, err := http.Post("http://"+b.Addr()+"/destroySandbox/gzip_compression", "application/json",
			strings.NewReader(`{"host": "`+host+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := notice(s1.hostport()); code != 200 {
		t.Errorf("notice for s1: %d", code)
	}
	e.rec.until("eviction on s1", func() bool { return len(e.rec.evicts) == 1 && e.rec.evicts[0].Worker == id1 })
	if code := notice("127.0.0.1:1"); code != 404 {
		t.Errorf("notice for an unserved host: %d, want 404", code)
	}

	// The admin API removes s1: the pool finishes, says removed, stops.
	removedAt := time.Now()
	e.publish(e.names.Workers(), &topics.Worker{ID: id1, State: topics.WorkerRemoved, Source: topics.SourceAdmin, At: removedAt})
	e.rec.worker(id1, "removed by the pool", func(w *topics.Worker) bool {
		return w.Bridge == "pool-test" && w.State == topics.WorkerRemoved && w.InFlight == 0
	})
	deadline := time.Now().Add(waitFor)
	for b.runnerFor(s1.hostport()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("runner of s1 still there after its removal")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := notice(s1.hostport()); code != 404 {
		t.Errorf("notice for removed s1: %d, want 404", code)
	}
	// No active heartbeat for s1 after the final removed record.
	time.Sleep(3 * cfg.HeartbeatInterval)
	if last := e.rec.lastWorker(id1); last.State != topics.WorkerRemoved {
		t.Errorf("latest s1 record %+v, want removed", last)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e.rec.until("s2 draining", func() bool {
		w := e.rec.lastWorkerLocked(id2)
		return w != nil && w.Bridge == "pool-test" && w.State == topics.WorkerDraining && w.InFlight == 0
	})
	if last := e.rec.lastWorker("sidecar-w"); last.Bridge != "someone" {
		t.Errorf("the pool wrote for a sidecar worker: %+v", last)
	}
}

func TestDedupe(t *testing.T) {
	d := newDedupe(2)
	var dup consumer.Delivery
	if d.begin("a", nil) != seenNew || d.begin("a", &dup) != seenRunning {
		t.Fatal("a running: want new then running")
	}
	if ds := d.finish("a"); len(ds) != 1 || ds[0] != &dup {
		t.Fatalf("finish a: %v, want the attached duplicate", ds)
	}
	if d.begin("a", nil) != seenFinished {
		t.Fatal("a finished: want finished")
	}
	for _, id := range []string{"b", "c"} {
		d.begin(id, nil)
		d.finish(id)
	}
	if d.len() != 2 {
		t.Fatalf("remembers %d, want 2", d.len())
	}
	if d.begin("a", nil) != seenNew {
		t.Fatal("a should be forgotten, oldest first")
	}
	d.abort("a")
	if d.begin("c", nil) != seenFinished || d.begin("a", nil) != seenNew {
		t.Fatal("c remembered, aborted a forgotten")
	}
	z := newDedupe(0)
	z.begin("x", nil)
	z.finish("x")
	if z.begin("x", nil) != seenNew {
		t.Fatal("size 0 remembers nothing finished")
	}
}
