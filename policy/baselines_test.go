package policy

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	want := []string{"chbl", "hash", "leastconn", "ow-hash", "p2c", "pull", "pull-chbl", "pull-wait", "random"}
	if got := Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for alias, canon := range map[string]string{
		"pull-based": "pull", "hashing-bounded": "chbl", "least-connections": "leastconn",
		"random": "random", "PULL": "pull", " p2c ": "p2c",
	} {
		p, err := New(alias, Config{})
		if err != nil {
			t.Fatalf("New(%q): %v", alias, err)
		}
		if p.Name() != canon {
			t.Fatalf("New(%q).Name() = %q, want %q", alias, p.Name(), canon)
		}
	}
	_, err := New("round-robin", Config{})
	if !errors.Is(err, ErrUnknownPolicy) {
		t.Fatalf("unknown name: err = %v, want ErrUnknownPolicy", err)
	}
	for _, n := range append(want, "pull-based", "hashing-bounded", "least-connections") {
		if !strings.Contains(err.Error(), n) {
			t.Fatalf("error %q does not list %q", err, n)
		}
	}
	for _, cfg := range []Config{{LoadBound: 0.5}, {LoadBound: math.NaN()}, {VirtualNodes: -1}} {
		if _, err := New("chbl", cfg); !errors.Is(err, ErrConfig) {
			t.Fatalf("New(chbl, %+v): err = %v, want ErrConfig", cfg, err)
		}
	}
	if s := Code(0).String(); s != "Code(0)" || NoCapacity.String() != "no-capacity" || StartCold.String() != "cold" {
		t.Fatalf("String() methods: %q %q %q", s, NoCapacity, StartCold)
	}
}

func joinN(p Policy, n, capacity int) {
	for i := 0; i < n; i++ {
		p.WorkerJoined(WorkerInfo{ID: fmt.Sprintf("w%d", i), Capacity: capacity})
	}
}

func TestCHBLReleasesLoadOnCompletion(t *testing.T) {
	// If released load were never subtracted (the reference library's bug),
	// the home worker's load would pass the bound after a few rounds and the
	// function would spill to other workers with nothing in flight.
	p, _ := New(NameCHBL, Config{})
	joinN(p, 4, 0)
	home := ""
	for i := 0; i < 1000; i++ {
		d := mustPick(t, p, "f", t0)
		if home == "" {
			home = d.Worker
		}
		if d.Worker != home {
			t.Fatalf("round %d went to %s, want the home worker %s: the bound drifted", i, d.Worker, home)
		}
		p.Completed(Completion{Worker: d.Worker, Function: "f", OK: true, Now: t0})
		if got := p.InFlight(home); got != 0 {
			t.Fatalf("in-flight after completion = %d, want 0", got)
		}
	}
}

func TestCHBLBoundHolds(t *testing.T) {
	for _, c := range []float64{1, 1.25, 2} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			p, _ := New(NameCHBL, Config{LoadBound: c, Seed: 3})
			joinN(p, 5, 0)
			total := 0
			spilled := false
			var home string
			for i := 0; i < 200; i++ {
				fn := "hot"
				if i%4 == 3 {
					fn = fmt.Sprintf("f%d", i)
				}
				d := mustPick(t, p, fn, t0)
				total++
				if fn == "hot" {
					if home == "" {
						home = d.Worker
					} else if d.Worker != home {
						spilled = true
					}
				}
				bound := int(math.Ceil(c * float64(total) / 5))
				for w := 0; w < 5; w++ {
					if l := p.InFlight(fmt.Sprintf("w%d", w)); l > bound {
						t.Fatalf("after %d picks w%d has load %d > bound %d", total, w, l, bound)
					}
				}
			}
			if !spilled {
				t.Fatal("a hot function never left its home worker: the bound is not applied")
			}
		})
	}
}

func TestHashIsStickyAndRespectsCapacity(t *testing.T) {
	p, _ := New(NameHash, Config{})
	joinN(p, 8, 2)
	first := mustPick(t, p, "f", t0)
	second := mustPick(t, p, "f", t0)
	if first.Worker != second.Worker {
		t.Fatalf("hash moved f from %s to %s with room left", first.Worker, second.Worker)
	}
	third := mustPick(t, p, "f", t0)
	if third.Worker == first.Worker {
		t.Fatalf("hash exceeded capacity 2 on %s", first.Worker)
	}
	// Draining the owner moves its keys; rejoining brings them back.
	p.Completed(Completion{Worker: first.Worker, Function: "f", OK: true})
	p.Completed(Completion{Worker: first.Worker, Function: "f", OK: true})
	p.WorkerDraining(first.Worker)
	if d := mustPick(t, p, "f", t0); d.Worker == first.Worker {
		t.Fatal("hash placed on a draining worker")
	}
	p.WorkerJoined(WorkerInfo{ID: first.Worker, Capacity: 2})
	if d := mustPick(t, p, "f", t0); d.Worker != first.Worker {
		t.Fatalf("after rejoin f went to %s, want %s", d.Worker, first.Worker)
	}
}

func TestHashSpreadsKeys(t *testing.T) {
	p, _ := New(NameHash, Config{})
	joinN(p, 10, 0)
	counts := map[string]int{}
	for i := 0; i < 10000; i++ {
		fn := fmt.Sprintf("fn-%d", i)
		d := mustPick(t, p, fn, t0)
		counts[d.Worker]++
		p.Completed(Completion{Worker: d.Worker, Function: fn, OK: true})
	}
	for w, n := range counts {
		if n < 600 || n > 1400 { // mean 1000; 100 virtual nodes keep it near
			t.Fatalf("worker %s owns %d of 10000 keys: %v", w, n, counts)
		}
	}
	if len(counts) != 10 {
		t.Fatalf("only %d workers own keys", len(counts))
	}
}

func TestLeastConnAndP2C(t *testing.T) {
	p, _ := New(NameLeastConn, Config{Seed: 9})
	joinN(p, 4, 0)
	for i := 0; i < 40; i++ {
		mustPick(t, p, "f", t0)
	}
	for w := 0; w < 4; w++ {
		if got := p.InFlight(fmt.Sprintf("w%d", w)); got != 10 {
			t.Fatalf("leastconn: w%d has %d, want 10", w, got)
		}
	}
	p.ExternalLoad("w2", 100)
	for i := 0; i < 30; i++ {
		if d := mustPick(t, p, "f", t0); d.Worker == "w2" {
			t.Fatal("leastconn chose the externally loaded worker")
		}
	}
	// p2c with two workers always compares both: it must pick the lighter.
	q, _ := New(NameP2C, Config{Seed: 9})
	joinN(q, 2, 0)
	q.ExternalLoad("w0", 5)
	for i := 0; i < 5; i++ {
		if d := mustPick(t, q, "f", t0); d.Worker != "w1" {
			t.Fatalf("p2c pick %d went to %s, want w1", i, d.Worker)
		}
	}
}

func TestRandomUsesEveryWorker(t *testing.T) {
	p, _ := New(NameRandom, Config{Seed: 5})
	joinN(p, 5, 0)
	seen := map[string]int{}
	for i := 0; i < 500; i++ {
		seen[mustPick(t, p, "f", t0).Worker]++
	}
	for w, n := range seen {
		if n < 60 {
			t.Fatalf("random chose %s only %d of 500 times: %v", w, n, seen)
		}
	}
	if len(seen) != 5 {
		t.Fatalf("random used %d of 5 workers", len(seen))
	}
}
