package scheduler

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/topics"
)

// refuseInvoker makes the broker refuse, with a non-retriable error, every
// produce request that carries a record for worker's invoker topic while
// refuse reports true. It returns how many such requests were refused.
// Requests that do not touch the invoker topic are left to the broker.
func refuseInvoker(t *testing.T, e *env, worker string, refuse func() bool) *atomic.Int32 {
	t.Helper()
	c := e.b.Cluster()
	name := e.names.Invoker(worker)
	info := c.TopicInfo(name) // resolved here: the control function runs on the cluster's goroutine
	if info == nil {
		t.Fatalf("topic %s does not exist", name)
	}
	id := info.TopicID
	var refused atomic.Int32
	c.ControlKey(kmsg.Produce.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		hit := false
		for _, rt := range req.Topics {
			if rt.Topic == name || rt.TopicID == id {
				hit = true
			}
		}
		if !hit || !refuse() {
			return nil, nil, false
		}
		refused.Add(1)
		return broker.RefuseProduce(req, kerr.PolicyViolation), nil, true
	})
	return &refused
}

// arrivalsCommitted waits until the scheduler group has committed every
// offset of the arrivals topic.
func arrivalsCommitted(t *testing.T, e *env) {
	t.Helper()
	group := e.names.Prefix + "scheduler"
	adm := kadm.NewClient(e.prod.Client())
	eventually(t, "arrivals committed", func() bool {
		lags, err := adm.Lag(e.ctx, group)
		if err != nil {
			return false
		}
		l := lags[group]
		tl := l.Lag.TotalByTopic()[e.names.Arrivals()]
		return l.Error() == nil && tl.Topic != "" && tl.Lag == 0
	})
}

// books reports what the scheduler still holds: jobs, retry list,
// pending queue and the in-flight count of worker.
func books(t *testing.T, s *Scheduler, worker string) (jobs, retry, pending, inflight int) {
	t.Helper()
	inspect(t, s, func(st *state) {
		jobs, retry, pending, inflight = len(st.jobs), len(st.retry), st.pend.Len(), st.pol.InFlight(worker)
	})
	return
}

// An assignment whose produce fails once is retried: the slot it held is
// released (a worker of capacity 1 takes the retry), the arrival is
// assigned exactly once, no result is published for it, and its offset is
// committed.
func TestAssignmentProduceFailsOnceThenRetried(t *testing.T) {
	e := newEnv(t, 2)
	br := e.bridge("w1", 1, false)
	res := e.results("c1")
	var left atomic.Int32
	left.Store(1)
	refused := refuseInvoker(t, e, "w1", func() bool { return left.Add(-1) >= 0 })
	cfg := e.config("s1")
	cfg.MaxAttempts = 3
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1")

	id := e.arrive("f", "c1", time.Time{})
	_, a := waitAssigned(t, id, br)
	if got := refused.Load(); got != 1 {
		t.Fatalf("refused produces = %d, want 1", got)
	}
	if a.Worker != "w1" || a.Reply != "c1" {
		t.Fatalf("assignment fields: %+v", a)
	}
	arrivalsCommitted(t, e)
	if got := metricValue(t, s.m.produceErrors.WithLabelValues("assignment")); got != 1 {
		t.Errorf("assignment produce errors = %v, want 1", got)
	}
	// The retry holds the one slot: in flight 1, nothing queued.
	if jobs, retry, pending, inflight := books(t, s, "w1"); jobs != 1 || retry != 0 || pending != 0 || inflight != 1 {
		t.Fatalf("books after retry: jobs %d retry %d pending %d in-flight %d, want 1 0 0 1", jobs, retry, pending, inflight)
	}
	br.complete(e.ctx, a, true)
	eventually(t, "completion applied", func() bool {
		jobs, retry, pending, inflight := books(t, s, "w1")
		return jobs == 0 && retry == 0 && pending == 0 && inflight == 0
	})
	// A second arrival goes through at once and lands in the same slot.
	id2 := e.arrive("f", "c1", time.Time{})
	_, a2 := waitAssigned(t, id2, br)
	br.complete(e.ctx, a2, true)
	arrivalsCommitted(t, e)
	if cs := br.counts(); cs[id] != 1 || cs[id2] != 1 {
		t.Fatalf("assigned %d and %d times, want once each", cs[id], cs[id2])
	}
	if r := res.get(id); r != nil {
		t.Fatalf("retried arrival got a scheduler result: %+v", r)
	}
}

// An assignment whose produce keeps failing is tried MaxAttempts times,
// then answered with a 503 result; the slot is free again, the offset is
// committed, and once the fault is gone the next arrival is placed.
func TestAssignmentProduceFailsPermanently503(t *testing.T) {
	e := newEnv(t, 2)
	br := e.bridge("w1", 1, false)
	res := e.results("c1")
	var broken atomic.Bool
	broken.Store(true)
	refused := refuseInvoker(t, e, "w1", broken.Load)
	cfg := e.config("s1")
	cfg.MaxAttempts = 3
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1")

	id := e.arrive("f", "c1", time.Time{})
	r := res.wait(t, id)
	if r.Status != http.StatusServiceUnavailable || r.Reason != topics.ReasonUnavailable || r.Source != "scheduler" ||
		!strings.Contains(r.Error, "after 3 attempts") || r.Worker != "w1" {
		t.Fatalf("result: %+v", r)
	}
	if got := refused.Load(); got != 3 {
		t.Errorf("refused produces = %d, want 3 (MaxAttempts)", got)
	}
	if got := metricValue(t, s.m.produceErrors.WithLabelValues("assignment")); got != 3 {
		t.Errorf("assignment produce errors = %v, want 3", got)
	}
	if got := metricValue(t, s.m.results.WithLabelValues(topics.ReasonUnavailable)); got != 1 {
		t.Errorf("unavailable results = %v, want 1", got)
	}
	arrivalsCommitted(t, e)
	if jobs, retry, pending, inflight := books(t, s, "w1"); jobs != 0 || retry != 0 || pending != 0 || inflight != 0 {
		t.Fatalf("books after 503: jobs %d retry %d pending %d in-flight %d, want all 0", jobs, retry, pending, inflight)
	}

	broken.Store(false)
	id2 := e.arrive("f", "c1", time.Time{})
	_, a2 := waitAssigned(t, id2, br)
	if a2.Worker != "w1" {
		t.Fatalf("assignment fields: %+v", a2)
	}
	arrivalsCommitted(t, e)
	br.complete(e.ctx, a2, true)
	eventually(t, "completion applied", func() bool {
		jobs, retry, pending, inflight := books(t, s, "w1")
		return jobs == 0 && retry == 0 && pending == 0 && inflight == 0
	})
	if cs := br.counts(); cs[id] != 0 || cs[id2] != 1 {
		t.Fatalf("assigned %d and %d times, want 0 and 1", cs[id], cs[id2])
	}
	if r := res.get(id2); r != nil {
		t.Fatalf("placed arrival got a scheduler result: %+v", r)
	}
	res.mu.Lock()
	n := len(res.got[id])
	res.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d results for the failed arrival, want 1", n)
	}
}
