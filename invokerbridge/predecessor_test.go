package invokerbridge

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// A fresh bridge given a worker's assignment partition learns from
// worker-events what a predecessor finished for that worker: a
// re-delivered assignment whose completion is there is finished without
// calling the worker and counted as a duplicate of a predecessor's; one
// without a completion, or whose id only another worker completed, runs.
func TestPredecessorCompletionsAreNotRunAgain(t *testing.T) {
	e := newEnv(t)
	s := newSim(t, workersim.Config{})
	id := s.workerID(t)

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := topics.Ensure(ctx, kadm.NewClient(e.prod.Client()), e.tcfg.InvokerSpec(id)); err != nil {
		t.Fatal(err)
	}
	// What the crashed predecessor left: x answered (its completion
	// published) but not committed; y never answered; z answered by
	// another worker only.
	x := e.assign(id, "float_operation", nil)
	y := e.assign(id, "float_operation", nil)
	z := e.assign(id, "float_operation", nil)
	e.publish(e.names.WorkerEvents(), &topics.Completion{ID: x.ID, Function: x.Function, Worker: id, OK: true,
		At: time.Now()})
	e.publish(e.names.WorkerEvents(), &topics.Completion{ID: z.ID, Function: z.Function, Worker: "other-9000", OK: true,
		At: time.Now()})

	b, _ := sidecar(t, e, s.srv.URL, nil)
	e.rec.result(y.ID)
	e.rec.result(z.ID)
	eventually(t, "x counted as a predecessor's duplicate", func() bool {
		return value(t, b.met.learnedDup.WithLabelValues(id)) == 1
	})
	if got := value(t, b.met.duplicates.WithLabelValues(id)); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
	if r, c := e.rec.count(x.ID); r != 0 || c != 1 {
		t.Errorf("%d results and %d completions for x, want 0 and the predecessor's 1", r, c)
	}
	if st := s.s.Stats(); st.Invocations != 2 {
		t.Errorf("worker ran %d invocations, want 2 (y and z)", st.Invocations)
	}
}

// learn adds what a predecessor finished without overriding what this
// process knows: an id running here or answered here stays so, and learned
// ids take their turn in the ring.
func TestDedupeLearn(t *testing.T) {
	d := newDedupe(3)
	d.begin("run", nil)
	d.begin("done", nil)
	d.finish("done")
	if n := d.learn([]string{"run", "done", "x", "x"}); n != 1 {
		t.Fatalf("learned %d, want 1 (x)", n)
	}
	if d.begin("x", nil) != seenLearned || d.begin("done", nil) != seenFinished {
		t.Fatal("want x learned, done finished here")
	}
	if d.begin("run", nil) != seenRunning {
		t.Fatal("a running id must stay running")
	}
	d.finish("run")
	d.learn([]string{"y"}) // the ring holds done, x, run: y pushes out done
	if d.begin("done", nil) != seenNew || d.begin("y", nil) != seenLearned {
		t.Fatal("want the oldest forgotten and y learned")
	}
	if n := newDedupe(0).learn([]string{"x"}); n != 0 {
		t.Fatalf("size 0 learned %d, want 0", n)
	}
}
