package policy

import (
	"fmt"
	"testing"
)

// TestPullCHBLFallsBackToTheHashHome: with no idle instance, pull-chbl
// places a function where chbl would (its home on the ring, under the load
// bound), and a function's repeated cold starts stay on that home while
// plain pull spreads them by load; warm picks still come from the idle
// queue.
func TestPullCHBLFallsBackToTheHashHome(t *testing.T) {
	workers := []WorkerInfo{{ID: "w1"}, {ID: "w2"}, {ID: "w3"}, {ID: "w4"}}
	newP := func(name string) Policy {
		p, err := New(name, Config{Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range workers {
			p.WorkerJoined(w)
		}
		return p
	}
	for i := 0; i < 20; i++ {
		fn := fmt.Sprintf("fn-%d", i)
		pc, ch := newP(NamePullCHBL), newP(NameCHBL)
		got, want := mustPick(t, pc, fn, t0), mustPick(t, ch, fn, t0)
		if got.Worker != want.Worker || got.Warm {
			t.Fatalf("%s: pull-chbl placed %+v, chbl %+v", fn, got, want)
		}
	}

	// Two concurrent cold requests for one function on two workers: pull
	// spreads them (least connections), pull-chbl keeps both on the home
	// worker, which stays under the bound ceil(1.25*(1+1)/2) = 2.
	spread := func(name string) int {
		p, err := New(name, Config{Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		p.WorkerJoined(WorkerInfo{ID: "w1"})
		p.WorkerJoined(WorkerInfo{ID: "w2"})
		seen := map[string]bool{}
		for k := 0; k < 2; k++ {
			seen[mustPick(t, p, "hot", t0).Worker] = true
		}
		return len(seen)
	}
	if n := spread(NamePull); n != 2 {
		t.Fatalf("pull put 2 cold requests on %d workers, want 2", n)
	}
	if n := spread(NamePullCHBL); n != 1 {
		t.Fatalf("pull-chbl put 2 cold requests on %d workers, want their home", n)
	}

	// Warm first: an idle instance elsewhere wins over the home worker.
	p := newP(NamePullCHBL)
	home := mustPick(t, newP(NameCHBL), "f", t0).Worker
	other := "w1"
	if home == other {
		other = "w2"
	}
	p.(IdleTracker).Idle(other, "f", t0)
	if d := mustPick(t, p, "f", t0); d.Worker != other || !d.Warm {
		t.Fatalf("got %+v, want warm on %s", d, other)
	}
}
