package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
)

// stop feeds the last record of id's bridge: it has left the worker's group.
func (r *coreRig) stop(id, state string) {
	r.st.workerRecord(&topics.Worker{ID: id, URL: "http://" + id, State: state, Source: topics.SourceSidecar,
		Bridge: "b-" + id, Stopped: true, At: r.clock.Now()}, r.clock.Now(), 0, r.off)
	r.off++
	r.st.workersProbe(r.clock.Now(), map[int32]int64{0: r.off})
}

// An assignment placed on a worker after its bridge stopped taking any
// sits untaken in the worker's topic; once the bridge's last record has
// been read and no bridge came back within a heartbeat timeout, the core
// asks which ones are there and places exactly those again. Without this
// their callers waited for the deadline (it/ TestAddAndRemoveWorkerAtRuntime
// hung 60 s on one).
func TestCorePlacesStrandedAssignmentsAgain(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	var asked []string
	r.st.strandCheck = func(worker string, since time.Time) { asked = append(asked, worker) }
	r.worker("w1", 0)
	r.arrive("a1", "f", time.Time{})
	r.arrive("a2", "g", time.Time{})
	if got := assignments(r.answer(nil)); got["a1"] == nil || got["a2"] == nil || got["a1"].Worker != "w1" {
		t.Fatalf("assignments %v, want a1 and a2 on w1", got)
	}
	r.worker("w2", 0)
	r.stop("w1", topics.WorkerRemoved)
	r.st.tick()
	if got := r.st.workers["w1"].rot; got == rotActive {
		t.Fatalf("w1 rotation %d after its bridge stopped, want out", got)
	}
	if len(asked) != 0 {
		t.Fatalf("asked %v at once; a restarted bridge gets a heartbeat timeout to take them", asked)
	}
	r.clock.Advance(r.st.cfg.HeartbeatTimeout)
	r.worker("w2", 0) // w2 stays fresh
	r.st.sweepWorkers(r.clock.Now())
	if len(asked) != 1 || asked[0] != "w1" {
		t.Fatalf("asked %v, want w1 once", asked)
	}
	r.st.sweepWorkers(r.clock.Now())
	if len(asked) != 1 {
		t.Fatalf("asked %v while the first read runs, want w1 once", asked)
	}

	// a1 was never taken (it is in the topic past the committed offset);
	// a2 was taken and its completion is on its way.
	r.st.stranded("w1", map[string]bool{"a1": true, "gone": true}, nil)
	r.st.afterChanges()
	got := assignments(r.answer(nil))
	if a := got["a1"]; a == nil || a.Worker != "w2" {
		t.Fatalf("after the read: assignments %v, want a1 placed again on w2", got)
	}
	if got["a2"] != nil {
		t.Fatal("a2, taken by w1's bridge, placed again: it would run twice")
	}
	if n := metricValue(t, r.st.m.stranded); n != 1 {
		t.Fatalf("stranded_total %v, want 1", n)
	}
	r.complete("a1", "f", "w2", true)
	r.complete("a2", "g", "w1", true)
	if len(r.st.jobs) != 0 {
		t.Fatalf("jobs left %v", r.st.jobs)
	}
	r.st.sweepWorkers(r.clock.Now())
	if len(asked) != 1 {
		t.Fatalf("asked again %v after everything was answered", asked)
	}
}

// A bridge that comes back (a sidecar restarted) resumes from its group's
// committed offset and runs what it left: nothing is placed again.
func TestCoreLeavesStrandedToARestartedBridge(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	var asked []string
	r.st.strandCheck = func(worker string, since time.Time) { asked = append(asked, worker) }
	r.worker("w1", 0)
	r.worker("w2", 0)
	r.arrive("a1", "f", time.Time{})
	out := assignments(r.answer(nil))
	w := out["a1"].Worker
	r.stop(w, topics.WorkerDraining)
	r.clock.Advance(time.Second)
	r.worker(w, 0) // its sidecar is back
	r.clock.Advance(r.st.cfg.HeartbeatTimeout)
	r.worker("w1", 0)
	r.worker("w2", 0)
	r.st.sweepWorkers(r.clock.Now())
	if len(asked) != 0 {
		t.Fatalf("asked %v though a bridge serves %s again", asked, w)
	}
	// A read already under way when the bridge came back changes nothing.
	r.st.stranded(w, map[string]bool{"a1": true}, nil)
	r.st.afterChanges()
	if got := assignments(r.answer(nil)); len(got) != 0 {
		t.Fatalf("placed again %v though a bridge serves %s again", got, w)
	}
}

// Through the driver, on a broker: w1's bridge stops after w1 got
// assignments it never took; its group committed past the first of them
// (taken). Once the Stopped record is read and a heartbeat timeout passes,
// every untaken one is placed again on w2, the taken one is not.
func TestStrandedAssignmentsPlacedAgain(t *testing.T) {
	e := newEnv(t, 1)
	b1, b2 := e.bridge("w1", 0, false), e.bridge("w2", 0, true)
	s, _ := e.start(e.config("s1"))
	waitRotation(t, s, "w1", "w2")
	b1.stop() // gone, but the scheduler does not know yet

	var ids []string
	for i := range 12 {
		ids = append(ids, e.arrive(fmt.Sprintf("f%d", i), "", time.Time{}))
	}
	var onW1 []string // in the order of w1's topic
	eventually(t, "every arrival assigned", func() bool {
		n := 0
		inspect(t, s, func(st *state) {
			for _, id := range ids {
				if j := st.jobs[id]; j != nil && j.phase == phaseAssigned || j == nil && st.seen.has(id) {
					n++
				}
			}
		})
		return n == len(ids)
	})
	err := consumer.ReadRange(e.ctx, consumer.ReaderConfig{Kafka: kafkaconn.Config{Brokers: e.addrs}, Topic: e.names.Invoker("w1")},
		nil, time.Time{}, func(r *kgo.Record) error {
			a, err := topics.DecodeAssignment(r.Value)
			if err != nil {
				return err
			}
			onW1 = append(onW1, a.ID)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(onW1) < 2 {
		t.Fatalf("only %d of %d arrivals on w1; the test needs two", len(onW1), len(ids))
	}
	// The first one was taken: the group committed past it.
	gcl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumerGroup(e.names.InvokerGroup("w1")),
		kgo.ConsumeTopics(e.names.Invoker("w1")), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	if fs := gcl.PollRecords(e.ctx, 1); fs.NumRecords() == 0 {
		t.Fatalf("the group read nothing: %v", fs.Errors())
	}
	var commitErr error
	gcl.CommitOffsetsSync(e.ctx, map[string]map[int32]kgo.EpochOffset{e.names.Invoker("w1"): {0: {Epoch: -1, Offset: 1}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
		})
	gcl.Close()
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	stopped := &topics.Worker{ID: "w1", URL: "http://127.0.0.1:1/w1", State: topics.WorkerDraining,
		Source: topics.SourceSidecar, Bridge: "b-w1", Stopped: true, At: e.clock.Now()}
	if err := e.prod.Publish(e.ctx, e.names.Workers(), stopped); err != nil {
		t.Fatal(err)
	}
	eventually(t, "w1 out of rotation", func() bool {
		var out bool
		inspect(t, s, func(st *state) { out = st.workers["w1"].rot != rotActive })
		return out
	})
	e.clock.Advance(time.Second) // w2 heartbeats on; w1's grace runs out
	e.clock.Advance(time.Second)
	e.clock.Advance(time.Second + 100*time.Millisecond)
	for _, id := range onW1[1:] {
		waitAssigned(t, id, b2)
	}
	if a := b2.assignment(onW1[0]); a != nil {
		t.Fatalf("%s, taken by w1's bridge, placed again on w2", onW1[0])
	}
	if n := metricValue(t, s.st.m.stranded); n != float64(len(onW1)-1) {
		t.Fatalf("stranded_total %v, want %d", n, len(onW1)-1)
	}
}
