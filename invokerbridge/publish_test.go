package invokerbridge

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
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
