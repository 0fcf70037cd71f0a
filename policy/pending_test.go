package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func ids(items []Item) string {
	s := make([]string, len(items))
	for i, it := range items {
		s[i] = it.ID
	}
	return strings.Join(s, ",")
}

func popAll(q *Pending) []Item {
	var out []Item
	for {
		it, ok := q.Pop()
		if !ok {
			return out
		}
		out = append(out, it)
	}
}

func mustPush(t *testing.T, q *Pending, items ...Item) {
	t.Helper()
	for _, it := range items {
		if err := q.Push(it); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPendingFIFO(t *testing.T) {
	q, err := NewPending("fifo", 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustPush(t, q, Item{ID: "a", Class: 1}, Item{ID: "b", Class: 9}, Item{ID: "c"}, Item{ID: "d", Class: 5})
	if it, _ := q.Peek(); it.ID != "a" {
		t.Fatalf("Peek = %q, want a", it.ID)
	}
	if got := ids(q.Items()); got != "a,b,c,d" {
		t.Fatalf("Items = %s", got)
	}
	if got := ids(popAll(q)); got != "a,b,c,d" {
		t.Fatalf("fifo order = %s, want a,b,c,d", got)
	}
}

func TestPendingPriority(t *testing.T) {
	q, _ := NewPending("priority", 10, nil)
	mustPush(t, q, Item{ID: "l1", Class: 0}, Item{ID: "h1", Class: 2}, Item{ID: "m1", Class: 1},
		Item{ID: "h2", Class: 2}, Item{ID: "l2", Class: 0}, Item{ID: "m2", Class: 1}, Item{ID: "h3", Class: 2})
	if got := ids(popAll(q)); got != "h1,h2,h3,m1,m2,l1,l2" {
		t.Fatalf("priority order = %s, want higher class first, fifo within", got)
	}
}

func TestPendingSJF(t *testing.T) {
	est, err := NewEstimator(EstimatorConfig{Alpha: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	est.Observe("short", 10*time.Millisecond)
	est.Observe("long", 1*time.Second)
	est.Observe("mid", 300*time.Millisecond)
	est.Observe("mid", 100*time.Millisecond) // EWMA: 200ms
	if d, ok := est.Estimate("mid"); !ok || d != 200*time.Millisecond {
		t.Fatalf("mid estimate = %v %v, want 200ms", d, ok)
	}
	// Unseen functions are estimated at the mean of the known ones.
	mean := (10*time.Millisecond + time.Second + 200*time.Millisecond) / 3
	if d, ok := est.Estimate("new"); ok || d != mean || est.Mean() != mean {
		t.Fatalf("unseen estimate = %v %v, want the mean %v", d, ok, mean)
	}

	q, _ := NewPending("sjf", 10, est)
	mustPush(t, q,
		Item{ID: "L", Function: "long", Enqueued: t0},
		Item{ID: "N", Function: "new", Enqueued: t0}, // ~403ms: between mid and long
		Item{ID: "M", Function: "mid", Enqueued: t0},
		Item{ID: "S1", Function: "short", Enqueued: t0},
		Item{ID: "S2", Function: "short", Enqueued: t0},
	)
	if got := ids(popAll(q)); got != "S1,S2,M,N,L" {
		t.Fatalf("sjf order = %s, want S1,S2,M,N,L", got)
	}

	// Aging: a long job is not overtaken by short jobs that arrive more
	// than its estimate after it.
	mustPush(t, q, Item{ID: "L", Function: "long", Enqueued: t0})
	mustPush(t, q, Item{ID: "S-early", Function: "short", Enqueued: t0.Add(500 * time.Millisecond)})
	mustPush(t, q, Item{ID: "S-late", Function: "short", Enqueued: t0.Add(2 * time.Second)})
	mustPush(t, q, Item{ID: "N-late", Function: "new", Enqueued: t0.Add(2 * time.Second)})
	if got := ids(popAll(q)); got != "S-early,L,S-late,N-late" {
		t.Fatalf("sjf aging order = %s, want S-early,L,S-late,N-late", got)
	}

	// With nothing learned yet every function is equal: FIFO.
	fresh, _ := NewEstimator(EstimatorConfig{})
	q2, _ := NewPending("sjf", 10, fresh)
	mustPush(t, q2, Item{ID: "x", Function: "a", Enqueued: t0}, Item{ID: "y", Function: "b", Enqueued: t0}, Item{ID: "z", Function: "a", Enqueued: t0})
	if got := ids(popAll(q2)); got != "x,y,z" {
		t.Fatalf("sjf without data = %s, want fifo", got)
	}
}

func TestPendingBoundsRemoveAndExpire(t *testing.T) {
	q, _ := NewPending("priority", 3, nil)
	mustPush(t, q, Item{ID: "a", Deadline: t0.Add(3 * time.Second)}, Item{ID: "b", Class: 1, Deadline: t0.Add(time.Second)}, Item{ID: "c"})
	err := q.Push(Item{ID: "d"})
	if !errors.Is(err, ErrPendingFull) {
		t.Fatalf("push over capacity: err = %v, want ErrPendingFull", err)
	}
	if q.Len() != 3 {
		t.Fatalf("Len = %d, want 3", q.Len())
	}
	if !q.Remove("c") || q.Remove("c") || q.Remove("zz") {
		t.Fatal("Remove reported wrongly")
	}
	if err := q.Push(Item{ID: "a"}); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("duplicate id: err = %v, want ErrDuplicateID", err)
	}
	mustPush(t, q, Item{ID: "e", Deadline: t0.Add(2 * time.Second)})
	if got := q.Expire(t0.Add(500 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("expired early: %v", got)
	}
	if got := ids(q.Expire(t0.Add(2 * time.Second))); got != "b,e" {
		t.Fatalf("expired %s, want b,e (deadline reached, earliest first)", got)
	}
	if got := ids(popAll(q)); got != "a" {
		t.Fatalf("left %s, want a", got)
	}
	if got := q.Expire(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("expired from an empty queue: %v", got)
	}
	if _, ok := q.Peek(); ok {
		t.Fatal("Peek on empty queue reported an item")
	}
}

func TestPendingConstructorErrors(t *testing.T) {
	if _, err := NewPending("lifo", 1, nil); !errors.Is(err, ErrUnknownDiscipline) || !strings.Contains(err.Error(), "sjf") {
		t.Fatalf("unknown discipline: %v", err)
	}
	if _, err := NewPending("fifo", 0, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("zero capacity: %v", err)
	}
	if _, err := NewPending("sjf", 1, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("sjf without estimator: %v", err)
	}
	if _, err := NewEstimator(EstimatorConfig{Alpha: 1.5}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad alpha: %v", err)
	}
}

// TestPendingHeapAgainstModel checks the indexed heaps against a sorted
// model under a random mix of pushes, pops, removes and expiries.
func TestPendingHeapAgainstModel(t *testing.T) {
	for _, disc := range Disciplines() {
		est, _ := NewEstimator(EstimatorConfig{})
		for i := 0; i < 5; i++ {
			est.Observe(fmt.Sprintf("f%d", i), time.Duration(i+1)*100*time.Millisecond)
		}
		q, _ := NewPending(disc, 50, est)
		state := uint64(12345)
		next := func(n int) int { // small deterministic LCG, independent of the code under test
			state = state*6364136223846793005 + 1442695040888963407
			return int((state >> 33) % uint64(n))
		}
		live := map[string]Item{}
		now := t0
		for step := 0; step < 3000; step++ {
			now = now.Add(time.Duration(next(100)) * time.Millisecond)
			switch next(4) {
			case 0, 1:
				it := Item{ID: fmt.Sprint(step), Function: fmt.Sprintf("f%d", next(7)), Class: next(3), Enqueued: now}
				if next(2) == 0 {
					it.Deadline = now.Add(time.Duration(next(3000)) * time.Millisecond)
				}
				if err := q.Push(it); err == nil {
					live[it.ID] = it
				} else if len(live) < 50 {
					t.Fatalf("push failed with %d queued: %v", len(live), err)
				}
			case 2:
				want := q.Items()
				it, ok := q.Pop()
				if ok != (len(live) > 0) || (ok && it.ID != want[0].ID) {
					t.Fatalf("%s: Pop = %v %v, want head %v", disc, it.ID, ok, want)
				}
				delete(live, it.ID)
			case 3:
				for _, it := range q.Expire(now) {
					if it.Deadline.IsZero() || it.Deadline.After(now) {
						t.Fatalf("%s: expired %+v at %v", disc, it, now)
					}
					delete(live, it.ID)
				}
				for _, it := range live {
					if !it.Deadline.IsZero() && !it.Deadline.After(now) {
						t.Fatalf("%s: %s past its deadline was kept", disc, it.ID)
					}
				}
				if next(3) == 0 {
					for id := range live {
						if !q.Remove(id) {
							t.Fatalf("Remove(%s) = false", id)
						}
						delete(live, id)
						break
					}
				}
			}
			if q.Len() != len(live) {
				t.Fatalf("%s: Len = %d, model %d", disc, q.Len(), len(live))
			}
		}
	}
}
