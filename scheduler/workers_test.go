package scheduler

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

// External load is what other replicas placed on a worker. Bridges split
// their in-flight count by scheduler, so a heartbeat written before our own
// calls completed must not turn them into phantom load.
func TestExternalLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		own  int // our in-flight count on w1 now
		rec  topics.Worker
		want int
	}{
		{"idle worker", 0, topics.Worker{InFlight: 0}, 0},
		{"old bridge: total less ours", 2, topics.Worker{InFlight: 5}, 3},
		{"old bridge: total below ours", 4, topics.Worker{InFlight: 1}, 0},
		{"only ours, since completed", 0, topics.Worker{InFlight: 4, InFlightBy: map[string]int{"s1": 4}}, 0},
		{"ours stale, others counted", 1, topics.Worker{InFlight: 7, InFlightBy: map[string]int{"s1": 4, "s2": 3}}, 3},
		{"several others and unnamed", 0, topics.Worker{InFlight: 6, InFlightBy: map[string]int{"s2": 3, "s3": 2, "": 1}}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := policy.New(policy.NamePull, policy.Config{})
			if err != nil {
				t.Fatal(err)
			}
			pol.WorkerJoined(policy.WorkerInfo{ID: "w1"})
			for range tc.own {
				pol.Pick(policy.Request{Function: "f"})
			}
			st := &state{cfg: Config{ID: "s1"}, pol: pol}
			rec := tc.rec
			rec.ID = "w1"
			if got := st.external(&rec, "w1"); got != tc.want {
				t.Errorf("external = %d, want %d", got, tc.want)
			}
		})
	}
}

// feedRig is a scheduler's state with no Kafka behind it: the test hands
// it worker records and probes of the workers topic, and moves the clock.
type feedRig struct {
	t     *testing.T
	st    *state
	clock *testClock
	off   int64 // next offset on the workers topic
}

func newFeedRig(t *testing.T) *feedRig {
	t.Helper()
	clock := &testClock{}
	s, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}, ID: "s1", Clock: clock.Now, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r := &feedRig{t: t, st: s.st, clock: clock}
	r.st.covered(clock.Now()) // read to its end at start-up
	return r
}

// record applies rec as the next record of the workers topic.
func (r *feedRig) record(rec topics.Worker) {
	r.st.workerRecord(&rec, rec.At, 0, r.off)
	r.off++
	if w := r.st.workers[rec.ID]; w != nil && !w.provisioned {
		r.st.provisioned(rec.ID)
	}
}

// heartbeat applies a sidecar bridge's heartbeat for id, stamped skew
// away from the scheduler's clock.
func (r *feedRig) heartbeat(id string, skew time.Duration) {
	r.record(topics.Worker{ID: id, State: topics.WorkerActive, Source: topics.SourceSidecar, Healthy: true,
		Bridge: "b-" + id, At: r.clock.Now().Add(skew)})
}

// heard lets the clock pass by d and then reports the topic read to its end.
func (r *feedRig) heard(d time.Duration) {
	r.clock.Advance(d)
	r.st.workersProbe(r.clock.Now(), map[int32]int64{0: r.off})
	r.st.sweepWorkers(r.clock.Now())
}

func (r *feedRig) rot(id string) rotation {
	if w := r.st.workers[id]; w != nil {
		return w.rot
	}
	return rotNone
}

// Freshness is judged by when this scheduler heard a heartbeat, not by
// the sender's stamp: a worker whose clock is far ahead leaves the rotation
// once silent, and one whose clock is behind enters it.
func TestWorkerFreshnessIgnoresSenderClock(t *testing.T) {
	for _, skew := range []time.Duration{0, -4 * time.Second, -time.Minute, 4 * time.Second, time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			r := newFeedRig(t)
			r.heartbeat("w1", skew)
			if got := r.rot("w1"); got != rotActive {
				t.Fatalf("after a heartbeat: rotation %d, want active", got)
			}
			for range 3 { // heartbeats every second keep it in
				r.heard(time.Second)
				r.heartbeat("w1", skew)
			}
			r.heard(time.Second)
			if got := r.rot("w1"); got != rotActive {
				t.Fatalf("heartbeating: rotation %d, want active", got)
			}
			for range 3 { // then silence: out after the timeout
				r.heard(time.Second)
			}
			if got := r.rot("w1"); got != rotNone {
				t.Fatalf("silent for 4s: rotation %d, want out", got)
			}
		})
	}
}

// A well-formed worker record that no bridge wrote puts no worker in
// rotation; a second bridge cannot take over a worker whose bridge is
// alive, until that bridge says it leaves or falls silent.
func TestWorkerRecordsBelieved(t *testing.T) {
	r := newFeedRig(t)
	ignored := func(reason string) float64 { return metricValue(t, r.st.m.ignored.WithLabelValues(reason)) }

	for _, src := range []string{"", topics.SourceSidecar, "someone"} {
		r.record(topics.Worker{ID: "ghost", URL: "http://ghost", State: topics.WorkerActive, Source: src, Healthy: true, At: r.clock.Now()})
	}
	if r.st.workers["ghost"] != nil {
		t.Fatal("a record without a bridge entered the book")
	}
	if got := ignored(ignoredNoBridge); got != 3 {
		t.Errorf("ignored no_bridge = %v, want 3", got)
	}

	// The admin API registers a worker; only its bridge puts it in rotation.
	r.record(topics.Worker{ID: "w2", URL: "http://w2", State: topics.WorkerActive, Source: topics.SourceAdmin, Healthy: true, At: r.clock.Now()})
	if r.st.workers["w2"] == nil || r.rot("w2") != rotNone {
		t.Fatal("an admin record alone: want registered, not in rotation")
	}
	r.record(topics.Worker{ID: "w2", URL: "http://w2", State: topics.WorkerActive, Source: topics.SourceAdmin, Healthy: true,
		Bridge: "pool", Capacity: 4, At: r.clock.Now()})
	if r.rot("w2") != rotActive {
		t.Fatal("the pool bridge's heartbeat: want in rotation")
	}
	r.record(topics.Worker{ID: "w2", URL: "http://w2", State: topics.WorkerActive, Source: topics.SourceAdmin, Healthy: true, At: r.clock.Now()})
	if w := r.st.workers["w2"]; w.rec.Bridge != "pool" || w.capacity != 4 {
		t.Errorf("an admin re-add overwrote the bridge's heartbeat: %+v", w.rec)
	}

	// Another bridge claims w1 while b-w1 serves it.
	r.heartbeat("w1", 0)
	forged := topics.Worker{ID: "w1", URL: "http://elsewhere", State: topics.WorkerActive, Source: topics.SourceSidecar,
		Healthy: true, Bridge: "b-forged"}
	r.record(forged)
	if w := r.st.workers["w1"]; w.rec.Bridge != "b-w1" || w.rot != rotActive {
		t.Fatalf("a second bridge took over a served worker: %+v", w.rec)
	}
	if got := ignored(ignoredBridgeChanged); got != 1 {
		t.Errorf("ignored bridge_changed = %v, want 1", got)
	}
	// ... but may once b-w1 said it leaves.
	r.record(topics.Worker{ID: "w1", State: topics.WorkerDraining, Source: topics.SourceSidecar, Bridge: "b-w1"})
	r.record(forged)
	if w := r.st.workers["w1"]; w.rec.Bridge != "b-forged" || w.rot != rotActive {
		t.Fatalf("after the old bridge left: %+v rotation %d", w.rec, w.rot)
	}
	// ... or once it fell silent.
	r.heartbeat("w3", 0)
	r.heard(2 * time.Second)
	r.heard(2 * time.Second)
	r.record(topics.Worker{ID: "w3", State: topics.WorkerActive, Source: topics.SourceSidecar, Healthy: true, Bridge: "b-new"})
	if w := r.st.workers["w3"]; w.rec.Bridge != "b-new" || w.rot != rotActive {
		t.Fatalf("after the old bridge fell silent: %+v rotation %d", w.rec, w.rot)
	}
}

// While the scheduler cannot read the workers topic, silence is its own:
// no worker leaves the rotation, arrivals wait in the pending queue rather
// than being rejected, and once the topic is read again the workers get a
// full timeout to be heard before silence counts.
func TestWorkersTopicOutage(t *testing.T) {
	r := newFeedRig(t)
	r.heartbeat("w1", 0)
	r.heard(500 * time.Millisecond)
	st := r.st

	for range 20 { // a 10s outage: ticks sweep, no probe completes
		r.clock.Advance(500 * time.Millisecond)
		st.sweepWorkers(r.clock.Now())
	}
	if got := r.rot("w1"); got != rotActive {
		t.Fatalf("after 10s unable to read: rotation %d, want still active", got)
	}
	now := r.clock.Now()
	a := &topics.Arrival{ID: topics.NewID(), Function: "f", Arrived: now}
	st.arrival(a, input{rec: &kgo.Record{}, ev: a, d: &marker{}}, now)
	if j := st.jobs[a.ID]; j == nil || j.phase != phasePending || st.pend.Len() != 1 {
		t.Fatalf("arrival while deaf: want pending, got job %+v, pending %d", j, st.pend.Len())
	}
	st.drain(now)
	if st.pend.Len() != 1 {
		t.Fatal("drained while deaf")
	}

	// The broker is back; the first probe completes: the backlog may be
	// decided, and w1 is still in rotation.
	r.heard(100 * time.Millisecond)
	if st.holding(r.clock.Now()) {
		t.Fatal("still holding after the topic was read to its end")
	}
	if got := r.rot("w1"); got != rotActive {
		t.Fatalf("after the outage: rotation %d, want active", got)
	}
	// Silence counts again from here.
	for range 4 {
		r.heard(time.Second)
	}
	if got := r.rot("w1"); got != rotNone {
		t.Fatalf("silent for 4s after the outage: rotation %d, want out", got)
	}
}

// Decisions wait for the workers topic at most two heartbeat timeouts from
// the first decision that had to wait.
func TestWorkersTopicHoldBounded(t *testing.T) {
	r := newFeedRig(t)
	hb := r.st.cfg.HeartbeatTimeout
	r.clock.Advance(hb + time.Millisecond)
	if !r.st.holding(r.clock.Now()) {
		t.Fatal("not holding when deaf")
	}
	r.clock.Advance(hb)
	if !r.st.holding(r.clock.Now()) {
		t.Fatal("stopped holding early")
	}
	r.clock.Advance(hb)
	if r.st.holding(r.clock.Now()) {
		t.Fatal("held longer than two heartbeat timeouts")
	}
}

// While the workers topic is replayed at start-up, a record counts as
// heard at its Kafka timestamp, never later than now: an old heartbeat
// puts no worker in rotation, and one stamped in the future counts as now.
func TestWorkerReplayUsesRecordTime(t *testing.T) {
	clock := &testClock{}
	s, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}, ID: "s1", Clock: clock.Now, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r := &feedRig{t: t, st: s.st, clock: clock}
	now := clock.Now()
	for i, c := range []struct {
		id string
		ts time.Time
	}{{"old", now.Add(-10 * time.Second)}, {"ahead", now.Add(time.Minute)}, {"recent", now.Add(-time.Second)}} {
		rec := topics.Worker{ID: c.id, State: topics.WorkerActive, Source: topics.SourceSidecar, Healthy: true,
			Bridge: "b-" + c.id, At: c.ts}
		r.st.workerRecord(&rec, c.ts, 0, int64(i))
		r.st.provisioned(c.id)
		r.off++
	}
	r.st.covered(clock.Now()) // read to its end
	if r.rot("old") != rotNone || r.rot("ahead") != rotActive || r.rot("recent") != rotActive {
		t.Fatalf("after replay: old %d, ahead %d, recent %d", r.rot("old"), r.rot("ahead"), r.rot("recent"))
	}
	for range 4 {
		r.heard(time.Second)
	}
	if r.rot("ahead") != rotNone || r.rot("recent") != rotNone {
		t.Fatal("replayed workers still in rotation after 4s of silence")
	}
}
