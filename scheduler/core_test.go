package scheduler

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/topics"
)

// The scheduler's core (state) is driven here with no broker and no
// sleeps: records go in as inputs, the records it wants published come out
// of takeOut, and the test plays the broker by answering them.

// marker is a delivery that remembers whether its offset may be committed.
type marker struct{ done int }

func (m *marker) Done() { m.done++ }

// coreRig is one core with a manual clock.
type coreRig struct {
	t     *testing.T
	st    *state
	clock *testClock
	off   int64
}

func newCoreRig(t *testing.T, partitions []int32, mutate func(*Config)) *coreRig {
	t.Helper()
	clock := &testClock{}
	cfg := Config{ID: "s1", Clock: clock.Now, Logger: testLogger()}
	if mutate != nil {
		mutate(&cfg)
	}
	cfg = cfg.WithDefaults()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	st, err := newState(cfg, cfg.Topics.Names(), m, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	r := &coreRig{t: t, st: st, clock: clock}
	st.covered(clock.Now())
	st.assigned(map[string][]int32{st.names.Arrivals(): partitions, st.names.WorkerEvents(): partitions},
		rebuildResult{adopt: map[string]string{}})
	r.flush() // nothing queued yet
	return r
}

// worker puts id in rotation with the given capacity (0: unlimited).
func (r *coreRig) worker(id string, capacity int) {
	r.st.workerRecord(&topics.Worker{ID: id, URL: "http://" + id, State: topics.WorkerActive, Source: topics.SourceSidecar,
		Capacity: capacity, Healthy: true, Bridge: "b-" + id, At: r.clock.Now()}, r.clock.Now(), 0, r.off)
	r.off++
	r.st.provisioned(id)
	r.st.workersProbe(r.clock.Now(), map[int32]int64{0: r.off})
}

// arrive feeds one arrival of fn on partition 0 and returns its delivery.
func (r *coreRig) arrive(id, fn string, deadline time.Time) *marker {
	m := &marker{}
	a := &topics.Arrival{ID: id, Function: fn, Reply: "c1", Arrived: r.clock.Now(), Deadline: deadline}
	r.st.handleBatch([]input{{rec: &kgo.Record{Topic: r.st.names.Arrivals()}, ev: a, d: m}})
	return m
}

// complete feeds the completion of id on worker.
func (r *coreRig) complete(id, fn, worker string, ok bool) *marker {
	m := &marker{}
	c := &topics.Completion{ID: id, Function: fn, Worker: worker, OK: ok, Start: topics.StartWarm, At: r.clock.Now()}
	r.st.handleBatch([]input{{rec: &kgo.Record{Topic: r.st.names.WorkerEvents(), Offset: 1 << 40}, ev: c, d: m}})
	return m
}

// flush takes what the core queued, without answering it.
func (r *coreRig) flush() []effect {
	return append([]effect(nil), r.st.takeOut(nil)...)
}

// answer plays the broker: every queued record gets err, and the core
// sees the answers; it returns the records.
func (r *coreRig) answer(err error) []effect {
	out := r.flush()
	for _, e := range out {
		e.done(err)
	}
	r.st.afterChanges()
	return out
}

func assignments(es []effect) map[string]*topics.Assignment {
	out := map[string]*topics.Assignment{}
	for _, e := range es {
		if a, ok := e.ev.(*topics.Assignment); ok {
			out[a.ID] = a
		}
	}
	return out
}

func resultsOf(es []effect) map[string]*topics.Result {
	out := map[string]*topics.Result{}
	for _, e := range es {
		if res, ok := e.ev.(*topics.Result); ok {
			out[res.ID] = res
		}
	}
	return out
}

// An arrival becomes an assignment on the worker's topic; its offset may
// be committed only once the broker acknowledged the assignment.
func TestCoreAssignsAndMarksAfterAck(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	r.worker("w1", 0)
	d := r.arrive("a1", "f", time.Time{})
	out := r.flush()
	if len(out) != 1 || out[0].topic != r.st.names.Invoker("w1") {
		t.Fatalf("effects %+v, want one assignment on w1's topic", out)
	}
	if d.done != 0 {
		t.Fatal("offset marked before the assignment was acknowledged")
	}
	out[0].done(nil)
	if d.done != 1 {
		t.Fatalf("offset marked %d times after the ack, want 1", d.done)
	}
	r.complete("a1", "f", "w1", true)
	if r.st.jobs["a1"] != nil {
		t.Fatal("job kept after its completion")
	}
}

// Produce failures: an assignment the broker refuses is retried (on the
// policy's choice again) up to MaxAttempts, then answered 503 unavailable.
func TestCoreProduceFailure(t *testing.T) {
	r := newCoreRig(t, []int32{0}, func(c *Config) { c.MaxAttempts = 2 })
	r.worker("w1", 0)
	d := r.arrive("a1", "f", time.Time{})
	fail := errors.New("broker down")
	if got := assignments(r.answer(fail)); got["a1"] == nil {
		t.Fatal("no first assignment")
	}
	if got := assignments(r.answer(fail)); got["a1"] == nil {
		t.Fatal("not retried after the first failure")
	}
	res := resultsOf(r.answer(nil))["a1"]
	if res == nil || res.Status != http.StatusServiceUnavailable || res.Reason != topics.ReasonUnavailable {
		t.Fatalf("after %d failed attempts: result %+v, want 503 unavailable", 2, res)
	}
	if d.done != 1 {
		t.Fatalf("offset marked %d times, want once with the answer", d.done)
	}
}

// Timeouts: an assignment whose completion never comes releases its slot at
// the deadline plus the margin and is answered 504; a pending arrival past
// its deadline is answered 504 too.
func TestCoreTimeouts(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	r.worker("w1", 1)
	deadline := r.clock.Now().Add(10 * time.Second)
	r.arrive("a1", "f", deadline)
	r.answer(nil)
	d2 := r.arrive("a2", "f", deadline) // w1's one slot is taken: pending
	if out := r.flush(); len(out) != 0 {
		t.Fatalf("pending arrival produced %+v", out)
	}
	r.clock.Advance(10*time.Second + r.st.cfg.TimeoutMargin)
	r.st.tick()
	res := resultsOf(r.answer(nil))
	for _, id := range []string{"a1", "a2"} {
		if res[id] == nil || res[id].Status != http.StatusGatewayTimeout {
			t.Errorf("%s: result %+v, want 504", id, res[id])
		}
	}
	if d2.done != 1 || len(r.st.jobs) != 0 || r.st.pol.InFlight("w1") != 0 {
		t.Fatalf("after the timeouts: a2 marked %d, jobs %d, in flight on w1 %d", d2.done, len(r.st.jobs), r.st.pol.InFlight("w1"))
	}
}

// Rebalance: a revoke drops the partition's books — pending arrivals go
// unmarked to the next owner, assigned ones release their slots — and a
// late completion of a dropped job is a foreign one.
func TestCoreRevoke(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	r.worker("w1", 1)
	d1 := r.arrive("a1", "f", time.Time{})
	r.answer(nil)
	d2 := r.arrive("a2", "f", time.Time{})
	r.st.revoked(map[string][]int32{r.st.names.Arrivals(): {0}, r.st.names.WorkerEvents(): {0}})
	if len(r.st.jobs) != 0 || r.st.pend.Len() != 0 || r.st.pol.InFlight("w1") != 0 {
		t.Fatalf("after revoke: jobs %d, pending %d, in flight %d", len(r.st.jobs), r.st.pend.Len(), r.st.pol.InFlight("w1"))
	}
	if d1.done != 1 || d2.done != 0 {
		t.Fatalf("marks: acknowledged a1 %d (want 1), pending a2 %d (want 0: the next owner reads it)", d1.done, d2.done)
	}
	r.complete("a1", "f", "w1", true)
	if r.flush() != nil && len(r.st.jobs) != 0 {
		t.Fatal("late completion recreated a job")
	}
}

// Crash takeover: arrivals the previous owner assigned are adopted (not
// placed again) and finished by their completion; those it finished are
// marked at once; the rest are placed.
func TestCoreTakeover(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	r.worker("w1", 0)
	r.st.revoked(map[string][]int32{r.st.names.Arrivals(): {0}, r.st.names.WorkerEvents(): {0}})
	r.st.assigned(map[string][]int32{r.st.names.Arrivals(): {0}, r.st.names.WorkerEvents(): {0}},
		rebuildResult{adopt: map[string]string{"running": "w1", "finished": ""}})
	running, finished := r.arrive("running", "f", time.Time{}), r.arrive("finished", "f", time.Time{})
	fresh := r.arrive("fresh", "f", time.Time{})
	got := assignments(r.answer(nil))
	if len(got) != 1 || got["fresh"] == nil {
		t.Fatalf("assignments %v, want only the fresh arrival's", got)
	}
	if running.done != 1 || finished.done != 1 || fresh.done != 1 {
		t.Fatalf("marks: running %d, finished %d, fresh %d; want 1 each", running.done, finished.done, fresh.done)
	}
	if j := r.st.jobs["running"]; j == nil || j.phase != phaseAdopted || j.worker != "w1" {
		t.Fatalf("running job %+v, want adopted on w1", j)
	}
	r.complete("running", "f", "w1", true)
	if r.st.jobs["running"] != nil || r.st.pol.InFlight("w1") != 1 {
		t.Fatalf("after the adopted completion: job %v, in flight on w1 %d (want fresh's 1)", r.st.jobs["running"], r.st.pol.InFlight("w1"))
	}
}

// Overload: past the pending cap an arrival is answered 429 at once; with
// no worker in rotation, 503.
func TestCoreRejects(t *testing.T) {
	r := newCoreRig(t, []int32{0}, func(c *Config) { c.PendingCap = 1 })
	r.arrive("a0", "f", time.Time{})
	if res := resultsOf(r.answer(nil))["a0"]; res == nil || res.Status != http.StatusServiceUnavailable || res.Reason != topics.ReasonNoWorkers {
		t.Fatalf("no workers: %+v, want 503 no_workers", res)
	}
	r.worker("w1", 1)
	r.arrive("a1", "f", time.Time{})
	r.answer(nil)
	r.arrive("a2", "f", time.Time{}) // pending: the one slot is taken
	r.arrive("a3", "f", time.Time{}) // over the cap
	if res := resultsOf(r.answer(nil))["a3"]; res == nil || res.Status != http.StatusTooManyRequests || res.Reason != topics.ReasonOverloaded {
		t.Fatalf("over the pending cap: %+v, want 429 overloaded", res)
	}
}

// The timeout heap pops jobs in timeout order, and a removed job (its
// completion came) is never popped.
func TestTimeoutHeap(t *testing.T) {
	var h timeoutHeap
	t0 := time.Unix(0, 0)
	jobs := map[int]*job{}
	for _, s := range []int{5, 1, 4, 2, 3} {
		jobs[s] = &job{timeout: t0.Add(time.Duration(s) * time.Second), hidx: -1}
		h.push(jobs[s])
	}
	h.remove(jobs[4])
	h.remove(jobs[4]) // twice: harmless
	if jobs[4].hidx != -1 {
		t.Fatalf("removed job keeps index %d", jobs[4].hidx)
	}
	if j := h.due(t0); j != nil {
		t.Fatalf("due before any timeout: %v", j.timeout)
	}
	var got []int
	for j := h.due(t0.Add(time.Hour)); j != nil; j = h.due(t0.Add(time.Hour)) {
		got = append(got, int(j.timeout.Sub(t0)/time.Second))
	}
	if want := []int{1, 2, 3, 5}; len(got) != len(want) || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 5 {
		t.Fatalf("popped %v, want %v", got, want)
	}
}

// When the rotation empties by silence (late heartbeats, as after a broker
// outage), arrivals wait for a while instead of being answered 503 at once;
// a worker heard again takes them. Long after the rotation emptied, 503.
func TestCoreWaitsOutAnEmptiedRotation(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	r.worker("w1", 0)
	r.st.tick()                        // a sweep sees w1 in rotation
	silence := func(d time.Duration) { // the topic read every second: nothing new
		for end := r.clock.Now().Add(d); r.clock.Now().Before(end); {
			r.clock.Advance(time.Second)
			r.st.workersProbe(r.clock.Now(), map[int32]int64{0: r.off})
			r.st.sweepWorkers(r.clock.Now())
		}
	}
	silence(4 * time.Second) // past the 3s heartbeat timeout
	if got := r.st.workers["w1"].rot; got != rotNone {
		t.Fatalf("w1 rotation %d after its silence, want out", got)
	}
	d := r.arrive("a1", "f", time.Time{})
	if out := r.flush(); len(out) != 0 {
		t.Fatalf("arrival right after the rotation emptied answered %+v, want it to wait", out)
	}
	r.worker("w1", 0) // heard again
	r.st.afterChanges()
	if got := assignments(r.answer(nil)); got["a1"] == nil || d.done != 1 {
		t.Fatalf("after w1 came back: assignments %v, a1 marked %d; want a1 placed", got, d.done)
	}

	silence(4 * time.Second)
	silence(4 * time.Second) // the rotation has been empty for two timeouts
	r.arrive("a2", "f", time.Time{})
	if res := resultsOf(r.answer(nil))["a2"]; res == nil || res.Reason != topics.ReasonNoWorkers {
		t.Fatalf("long after the rotation emptied: %+v, want 503 no_workers", res)
	}
}
