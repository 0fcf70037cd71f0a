package invokerbridge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// refuseProduce makes the broker refuse every produce request that touches
// topic while refuse is set, and counts the refusals.
func refuseProduce(t *testing.T, e *env, topic string, refuse *atomic.Bool) *atomic.Int32 {
	t.Helper()
	c := e.b.Cluster()
	var id [16]byte
	if info := c.TopicInfo(topic); info != nil { // resolved here: the control function runs on the cluster's goroutine
		id = info.TopicID
	}
	var refused atomic.Int32
	c.ControlKey(kmsg.Produce.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		hit := false
		for _, rt := range req.Topics {
			if rt.Topic == topic || id != [16]byte{} && rt.TopicID == id {
				hit = true
			}
		}
		if !hit || !refuse.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return broker.RefuseProduce(req, kerr.PolicyViolation), nil, true
	})
	return &refused
}

// A completion that cannot be published is given up after PublishTimeout,
// counted, and its assignment finished: more such assignments than the
// partition may hold unfinished do not pause it for good, later
// assignments still run, and the given-up ones are not run again.
func TestUnpublishedCompletionsDoNotStallThePartition(t *testing.T) {
	e := newEnv(t)
	s := newSim(t, workersim.Config{})
	b, _ := sidecar(t, e, s.srv.URL, func(c *Config) {
		c.Capacity = 2 // the partition pauses at 2 unfinished assignments
		c.PublishTimeout = 300 * time.Millisecond
	})
	id := b.cfg.WorkerID
	e.rec.worker(id, "registered", func(*topics.Worker) bool { return true })

	var refuse atomic.Bool
	refuse.Store(true)
	refused := refuseProduce(t, e, e.names.WorkerEvents(), &refuse)
	const blocked = 5
	for range blocked {
		e.assign(id, "float_operation", nil)
	}
	eventually(t, "every blocked completion given up", func() bool {
		return value(t, b.met.lost.WithLabelValues(id)) == blocked
	})
	if refused.Load() == 0 {
		t.Fatal("no produce to worker-events was refused")
	}
	refuse.Store(false)

	for range 3 {
		a := e.assign(id, "float_operation", nil)
		if c := e.rec.completion(a.ID); !c.OK {
			t.Errorf("completion %+v after the outage: want OK", c)
		}
	}
	if st := s.s.Stats(); st.Invocations != blocked+3 {
		t.Errorf("worker ran %d invocations, want %d: each assignment once", st.Invocations, blocked+3)
	}
}

// eventually waits until cond holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readyz returns the status and reason the bridge's /readyz answers.
func readyz(t *testing.T, b *Bridge) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + b.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body["reason"]
}

// /readyz fails, naming the worker's assignment partition, while it holds
// a record no running call accounts for (here a duplicate waiting on its
// original) and nothing has finished for StuckAfter (1ns here: at once); a
// long call alone, with the partition paused behind it, does not make the
// bridge unready, and once the calls finish it is ready again. Dead
// letters are metrics.
func TestReadyzReportsNoProgress(t *testing.T) {
	e := newEnv(t)
	var running atomic.Int32
	release := make(chan struct{})
	var once sync.Once
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			io.WriteString(w, "ready\n")
			return
		}
		running.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, `{"ok": true}`)
	}))
	defer worker.Close()
	defer once.Do(func() { close(release) })
	b, _ := sidecar(t, e, worker.URL, func(c *Config) {
		c.Capacity = 2
		c.StuckAfter = time.Nanosecond
	})
	id := b.cfg.WorkerID

	first := e.assign(id, "f", nil)
	eventually(t, "the first call running", func() bool { return running.Load() == 1 })
	if code, reason := readyz(t, b); code != http.StatusOK {
		t.Fatalf("/readyz %d (%s) with one long call and nothing else held, want 200", code, reason)
	}
	e.publish(e.names.Invoker(id), first) // a duplicate: held until the first call ends
	want := e.names.Invoker(id) + "[0]"
	eventually(t, "readyz naming the partition the duplicate waits on", func() bool {
		code, reason := readyz(t, b)
		return code == http.StatusServiceUnavailable && strings.Contains(reason, want)
	})

	once.Do(func() { close(release) })
	e.rec.result(first.ID)
	eventually(t, "ready once the call and its duplicate finished", func() bool {
		code, _ := readyz(t, b)
		return code == http.StatusOK
	})
	if running.Load() != 1 {
		t.Errorf("worker called %d times, want 1", running.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := e.prod.Client().ProduceSync(ctx, &kgo.Record{Topic: e.names.Invoker(id), Value: []byte("junk")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the junk assignment counted as a dead letter", func() bool {
		resp, err := http.Get("http://" + b.Addr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "\npullsched_invoker_dead_letters_total 1\n") &&
			strings.Contains(string(body), "\npullsched_invoker_dead_letter_failures_total 0\n")
	})
}
