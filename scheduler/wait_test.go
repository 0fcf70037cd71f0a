package scheduler

import (
	"testing"
	"time"

	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

// finish publishes the completion of a with the given start and duration,
// as a bridge would for a real worker.
func (br *bridge) finish(t *testing.T, a *topics.Assignment, start topics.Start, ms float64) {
	t.Helper()
	c := &topics.Completion{ID: a.ID, Function: a.Function, Worker: br.id, OK: true, Start: start, WarmHint: a.Warm,
		DurationMs: ms, At: br.e.clock.Now()}
	if err := br.e.prod.Publish(br.e.ctx, br.e.names.WorkerEvents(), c); err != nil {
		t.Fatal(err)
	}
	br.mu.Lock()
	br.inflight--
	br.mu.Unlock()
}

// With pull-wait, an arrival whose function's only instance is busy, and
// due to finish well before a cold start would, waits in the scheduler and
// is then placed warm on that instance's worker; one whose wait runs out
// is placed cold; a held arrival past its deadline is answered 504.
func TestPullWaitHoldsForWarmInstance(t *testing.T) {
	e := newEnv(t, 1)
	w1 := e.bridge("w1", 0, false)
	cfg := e.config("s1")
	cfg.Policy = policy.NamePullWait
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1")
	res := e.results("c1")

	// Learn f: a cold run of 400 ms, a warm one of 20 ms.
	_, a := waitAssigned(t, e.arrive("f", "", time.Time{}), w1)
	w1.finish(t, a, topics.StartCold, 400)
	eventually(t, "idle after the cold run", func() bool { return idleCount(t, s, "w1", "f") == 1 })
	_, a = waitAssigned(t, e.arrive("f", "", time.Time{}), w1)
	if !a.Warm {
		t.Fatalf("second arrival not warm: %+v", a)
	}
	w1.finish(t, a, topics.StartWarm, 20)
	eventually(t, "idle after the warm run", func() bool { return idleCount(t, s, "w1", "f") == 1 })

	// busy takes the idle instance and keeps it busy.
	_, busy := waitAssigned(t, e.arrive("f", "", time.Time{}), w1)
	if !busy.Warm {
		t.Fatalf("third arrival not warm: %+v", busy)
	}
	held := e.arrive("f", "", time.Time{})
	eventually(t, "arrival held", func() bool {
		n := 0
		inspect(t, s, func(st *state) { n = st.heldN["f"] })
		return n == 1
	})
	if w1.assignment(held) != nil {
		t.Fatal("held arrival was assigned while its function's instance was busy")
	}
	if got := metricValue(t, s.m.held); got != 1 {
		t.Errorf("held_arrivals = %v, want 1", got)
	}
	w1.finish(t, busy, topics.StartWarm, 20)
	_, a = waitAssigned(t, held, w1)
	if !a.Warm {
		t.Fatalf("held arrival placed cold after the instance freed: %+v", a)
	}

	// Nobody finishes a: the next arrival waits for it about 380 ms (cold
	// less warm), then starts cold.
	t0 := time.Now()
	late := e.arrive("f", "", time.Time{})
	_, b := waitAssigned(t, late, w1)
	if b.Warm {
		t.Fatalf("arrival after an expired wait placed warm: %+v", b)
	}
	if waited := time.Since(t0); waited < 300*time.Millisecond {
		t.Fatalf("arrival placed after %v; want it held about 380ms first", waited)
	}

	// A held arrival whose deadline passes first is answered 504.
	id := e.arrive("f", "c1", e.clock.Now().Add(50*time.Millisecond))
	if r := res.wait(t, id); r.Status != 504 || r.Reason != topics.ReasonTimeout {
		t.Fatalf("held past its deadline: %+v", r)
	}
	var left int
	inspect(t, s, func(st *state) { left = len(st.heldN) })
	if left != 0 {
		t.Fatalf("held counts not balanced: %d functions left", left)
	}
}
