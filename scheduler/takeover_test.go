package scheduler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/topics"
)

// A replica that takes over partitions a crashed replica held does not
// place again the arrivals that replica had assigned but not committed:
// one whose completion is in worker-events is finished, one still running
// is adopted and finished by its completion; an arrival nobody assigned is
// placed as usual. Before, both were placed again, on whichever worker the
// policy chose (issue 13 item 6).
func TestTakeoverAdoptsUncommittedAssignments(t *testing.T) {
	e := newEnv(t, 1)
	w1 := e.bridge("w1", 8, false)
	w2 := e.bridge("w2", 8, false)

	// What the crashed replica left: a0 committed; a1 assigned to w1 and
	// running; a2 assigned to w2 and finished; a3 read but not placed.
	publish := func(topic string, ev topics.Event) {
		t.Helper()
		if err := e.prod.Publish(e.ctx, topic, ev); err != nil {
			t.Fatal(err)
		}
	}
	arrival := func() *topics.Arrival {
		a := &topics.Arrival{ID: topics.NewID(), Function: "f", Reply: "c1", Arrived: e.clock.Now()}
		publish(e.names.Arrivals(), a)
		return a
	}
	a0 := arrival()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: e.names.Arrivals(), Partition: 0, At: 1, LeaderEpoch: -1})
	group := e.tc.Names().Prefix + "scheduler"
	if _, err := kadm.NewClient(e.prod.Client()).CommitOffsets(e.ctx, group, offs); err != nil {
		t.Fatal(err)
	}
	a1, a2, a3 := arrival(), arrival(), arrival()
	assign := func(a *topics.Arrival, worker string) *topics.Assignment {
		asg := &topics.Assignment{ID: a.ID, Function: a.Function, Reply: a.Reply, Worker: worker,
			Arrived: a.Arrived, Assigned: e.clock.Now(), Scheduler: "crashed"}
		publish(e.names.Invoker(worker), asg)
		return asg
	}
	asg1 := assign(a1, "w1")
	assign(a2, "w2")
	publish(e.names.WorkerEvents(), &topics.Completion{ID: a2.ID, Function: "f", Worker: "w2", OK: true,
		Start: topics.StartCold, DurationMs: 1, At: e.clock.Now()})

	cfg := e.config("s2")
	cfg.Listen = "127.0.0.1:0"
	s, _ := e.start(cfg)
	waitAssigned(t, a3.ID, w1, w2)
	eventually(t, "a1 adopted and a2 finished", func() bool {
		return metricText(t, s, `pullsched_scheduler_takeover_total{outcome="adopted"} 1`) &&
			metricText(t, s, `pullsched_scheduler_takeover_total{outcome="finished"} 1`)
	})
	for _, a := range []*topics.Arrival{a0, a1, a2} {
		if n := w1.counts()[a.ID] + w2.counts()[a.ID]; n > 1 || (a != a0 && n != 1) {
			t.Errorf("arrival %s assigned %d times", a.ID, n)
		}
	}

	w1.complete(e.ctx, asg1, true)
	eventually(t, "the adopted arrival finished by its completion", func() bool {
		done := false
		inspect(t, s, func(st *state) { done = st.jobs[a1.ID] == nil && st.seen.has(a1.ID) })
		return done
	})
	// Its completion released no slot this replica took: the policy's own
	// count on w1 stays what this replica placed there.
	inspect(t, s, func(st *state) {
		if n, mine := st.pol.InFlight("w1"), w1.counts()[a3.ID]; n != mine {
			t.Errorf("policy in-flight on w1 = %d, want %d (a3's only)", n, mine)
		}
	})
}
