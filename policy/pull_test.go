package policy

import (
	"testing"
	"time"
)

func newPullT(t *testing.T, cfg Config, workers ...WorkerInfo) *pull {
	t.Helper()
	p, err := New("pull-based", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workers {
		p.WorkerJoined(w)
	}
	return p.(*pull)
}

func mustPick(t *testing.T, p Policy, fn string, now time.Time) Decision {
	t.Helper()
	d := p.Pick(Request{Function: fn, Now: now})
	if d.Code != Placed {
		t.Fatalf("Pick(%s) = %v, want placed", fn, d.Code)
	}
	return d
}

func TestPullWarmTakesLeastLoadedIdleWorker(t *testing.T) {
	p := newPullT(t, Config{}, WorkerInfo{ID: "a"}, WorkerInfo{ID: "b"}, WorkerInfo{ID: "c"})
	p.Idle("a", "f", t0)
	p.Idle("b", "f", t0)
	p.ExternalLoad("a", 3)
	d := mustPick(t, p, "f", t0)
	if d.Worker != "b" || !d.Warm {
		t.Fatalf("got %+v, want warm on b (a is loaded)", d)
	}
	p.Completed(Completion{Worker: "b", Function: "f", OK: true, Start: StartWarm, WarmHint: true, Now: t0})
	// Load changes must re-prioritise: now b is the loaded one.
	p.ExternalLoad("a", 0)
	p.ExternalLoad("b", 5)
	d = mustPick(t, p, "f", t0)
	if d.Worker != "a" || !d.Warm {
		t.Fatalf("got %+v, want warm on a after the load change", d)
	}
	// Only b is left idle for f; it is loaded but has room (unlimited).
	d = mustPick(t, p, "f", t0)
	if d.Worker != "b" || !d.Warm {
		t.Fatalf("got %+v, want warm on b", d)
	}
	// Queue empty: least connections, which is c (load 0).
	d = mustPick(t, p, "f", t0)
	if d.Worker != "c" || d.Warm {
		t.Fatalf("got %+v, want cold on c", d)
	}
}

func TestPullSkipsFullIdleWorker(t *testing.T) {
	p := newPullT(t, Config{}, WorkerInfo{ID: "a", Capacity: 1}, WorkerInfo{ID: "b", Capacity: 1})
	p.Idle("a", "f", t0)
	p.ExternalLoad("a", 1) // a is full
	d := mustPick(t, p, "f", t0)
	if d.Worker != "b" || d.Warm {
		t.Fatalf("got %+v, want cold on b", d)
	}
	if got := p.Pick(Request{Function: "f", Now: t0}); got.Code != NoCapacity {
		t.Fatalf("got %+v, want no capacity", got)
	}
	p.ExternalLoad("a", 0) // a has room again and is still idle for f
	d = mustPick(t, p, "f", t0)
	if d.Worker != "a" || !d.Warm {
		t.Fatalf("got %+v, want warm on a once it has room", d)
	}
}

func TestPullCountsIdlePerPair(t *testing.T) {
	p := newPullT(t, Config{}, WorkerInfo{ID: "a", Capacity: 3}, WorkerInfo{ID: "b"})
	for i := 0; i < 10; i++ {
		p.Idle("a", "f", t0)
		p.Idle("b", "f", t0)
	}
	if got := p.IdleCount("a", "f"); got != 3 {
		t.Fatalf("idle count on a = %d, want capped at capacity 3", got)
	}
	if got := p.IdleCount("b", "f"); got != 10 {
		t.Fatalf("idle count on b = %d, want 10 (unlimited capacity)", got)
	}
	if n := len(p.fheaps[p.fids["f"]]); n != 2 {
		t.Fatalf("idle heap for f holds %d entries, want one per worker (2)", n)
	}
}

func TestPullEvictionRemovesOneInstance(t *testing.T) {
	p := newPullT(t, Config{}, WorkerInfo{ID: "a"}, WorkerInfo{ID: "b"})
	p.Idle("a", "f", t0)
	p.Idle("a", "f", t0)
	p.Evicted("a", "f", t0)
	if got := p.IdleCount("a", "f"); got != 1 {
		t.Fatalf("after one eviction idle count = %d, want 1", got)
	}
	if d := mustPick(t, p, "f", t0); d.Worker != "a" || !d.Warm {
		t.Fatalf("got %+v, want warm on a", d)
	}
	p.Evicted("a", "f", t0) // nothing left: harmless
	p.Evicted("zz", "f", t0)
	p.Evicted("a", "nope", t0)
	if d := mustPick(t, p, "f", t0); d.Warm {
		t.Fatalf("got %+v, want a cold decision after eviction emptied the queue", d)
	}
}

func TestPullKeepAliveExpiry(t *testing.T) {
	p := newPullT(t, Config{KeepAlive: time.Minute}, WorkerInfo{ID: "a"}, WorkerInfo{ID: "b"})
	p.Idle("a", "f", t0)
	p.Idle("b", "g", t0.Add(30*time.Second))
	// Exactly at the keep-alive the entry is still trusted.
	if got := p.IdleCount("a", "f"); got != 1 {
		t.Fatalf("idle count = %d, want 1", got)
	}
	p.Evicted("x", "y", t0.Add(time.Minute)) // any call carries the clock
	if got := p.IdleCount("a", "f"); got != 1 {
		t.Fatalf("at exactly KeepAlive idle count = %d, want 1", got)
	}
	d := p.Pick(Request{Function: "f", Now: t0.Add(time.Minute + time.Nanosecond)})
	if d.Warm {
		t.Fatalf("got %+v, want cold after the entry expired", d)
	}
	if got := p.IdleCount("a", "f"); got != 0 {
		t.Fatalf("expired idle count = %d, want 0", got)
	}
	if got := p.IdleCount("b", "g"); got != 1 {
		t.Fatalf("younger entry idle count = %d, want 1", got)
	}
	// A completion refreshes the entry.
	p.Completed(Completion{Worker: d.Worker, Function: "f", OK: true, Now: t0.Add(2 * time.Minute)})
	p.Idle("b", "g", t0.Add(2*time.Minute))
	if d := mustPick(t, p, "f", t0.Add(2*time.Minute+50*time.Second)); !d.Warm {
		t.Fatalf("got %+v, want warm within the refreshed keep-alive", d)
	}
}

func TestPullNegativeKeepAliveNeverExpires(t *testing.T) {
	p := newPullT(t, Config{KeepAlive: -1}, WorkerInfo{ID: "a"})
	p.Idle("a", "f", t0)
	if d := mustPick(t, p, "f", t0.Add(1000*time.Hour)); !d.Warm {
		t.Fatalf("got %+v, want warm: entries never expire", d)
	}
}

func TestPullColdStartOnWarmHintDropsStaleEntries(t *testing.T) {
	p := newPullT(t, Config{}, WorkerInfo{ID: "a"})
	for i := 0; i < 3; i++ {
		p.Idle("a", "f", t0)
	}
	d := mustPick(t, p, "f", t0)
	if !d.Warm {
		t.Fatalf("got %+v, want warm", d)
	}
	if got := p.IdleCount("a", "f"); got != 2 {
		t.Fatalf("idle count after a warm pick = %d, want 2", got)
	}
	// The worker ran it cold: the idle instances it was based on are gone.
	p.Completed(Completion{Worker: "a", Function: "f", OK: true, Start: StartCold, WarmHint: true, Now: t0})
	if got := p.IdleCount("a", "f"); got != 1 {
		t.Fatalf("idle count = %d, want 1 (stale entries dropped, the finished sandbox enqueued)", got)
	}
	// The same report on a failed run drops them and enqueues nothing.
	p.Idle("a", "f", t0)
	mustPick(t, p, "f", t0)
	p.Completed(Completion{Worker: "a", Function: "f", OK: false, Start: StartCold, WarmHint: true, Now: t0})
	if got := p.IdleCount("a", "f"); got != 0 {
		t.Fatalf("idle count = %d, want 0", got)
	}
	// A cold start without a warm hint is normal and drops nothing.
	p.Idle("a", "f", t0)
	p.Idle("a", "f", t0)
	p.Completed(Completion{Worker: "a", Function: "f", OK: true, Start: StartCold, Now: t0})
	if got := p.IdleCount("a", "f"); got != 3 {
		t.Fatalf("idle count = %d, want 3", got)
	}
}

func TestPullFailureDoesNotEnqueueIdle(t *testing.T) {
	p := newPullT(t, Config{}, WorkerInfo{ID: "a"})
	d := mustPick(t, p, "f", t0)
	p.Completed(Completion{Worker: d.Worker, Function: "f", OK: false, Now: t0})
	if got := p.IdleCount("a", "f"); got != 0 {
		t.Fatalf("idle count after a failure = %d, want 0", got)
	}
	if got := p.InFlight("a"); got != 0 {
		t.Fatalf("in-flight after a failure = %d, want 0 (slot released)", got)
	}
	if d := mustPick(t, p, "f", t0); d.Warm {
		t.Fatalf("got %+v, want cold", d)
	}
}

func TestPullDrainingAndLeftWorkers(t *testing.T) {
	p := newPullT(t, Config{}, WorkerInfo{ID: "a"}, WorkerInfo{ID: "b"})
	p.Idle("a", "f", t0)
	d := mustPick(t, p, "g", t0) // some in-flight work
	p.WorkerDraining("a")
	p.WorkerDraining("b")
	if got := p.Pick(Request{Function: "f", Now: t0}); got.Code != NoWorkers {
		t.Fatalf("all draining: got %+v, want no workers", got)
	}
	if got := p.IdleCount("a", "f"); got != 0 {
		t.Fatalf("draining worker keeps %d idle entries, want 0", got)
	}
	// Its in-flight work completes but does not make it idle.
	p.Completed(Completion{Worker: d.Worker, Function: "g", OK: true, Now: t0})
	if got := p.IdleCount(d.Worker, "g"); got != 0 || p.InFlight(d.Worker) != 0 {
		t.Fatalf("draining worker: idle %d in-flight %d, want 0 0", got, p.InFlight(d.Worker))
	}
	p.Idle("a", "f", t0) // ignored while draining
	p.WorkerJoined(WorkerInfo{ID: "a"})
	if got := mustPick(t, p, "f", t0); got.Worker != "a" || got.Warm { // b is still draining
		t.Fatalf("got %+v, want a cold decision on the rejoined worker", got)
	}
	p.WorkerLeft("a")
	// A late completion for a departed worker is harmless.
	p.Completed(Completion{Worker: "a", Function: "f", OK: true, Now: t0})
	p.Completed(Completion{Worker: "a", Function: "f", OK: true, Now: t0})
	p.Completed(Completion{Worker: "ghost", Function: "f", OK: true, Now: t0})
	if got := p.InFlight("a"); got != 0 {
		t.Fatalf("in-flight of departed worker = %d, want 0", got)
	}
	if got := p.IdleCount("a", "f"); got != 0 {
		t.Fatalf("departed worker is idle for f (%d)", got)
	}
}

func TestCodesWhenNothingFits(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			p, err := New(name, Config{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if d := p.Pick(Request{Function: "f"}); d.Code != NoWorkers || d.Worker != "" {
				t.Fatalf("empty cluster: %+v, want no workers", d)
			}
			p.WorkerJoined(WorkerInfo{ID: "a", Capacity: 2})
			p.WorkerJoined(WorkerInfo{ID: "b", Capacity: 1})
			p.ExternalLoad("b", 1)
			for i := 0; i < 2; i++ {
				if d := p.Pick(Request{Function: "f"}); d.Worker != "a" {
					t.Fatalf("pick %d: %+v, want a (b is full)", i, d)
				}
			}
			if d := p.Pick(Request{Function: "f"}); d.Code != NoCapacity {
				t.Fatalf("full cluster: %+v, want no capacity", d)
			}
			p.WorkerJoined(WorkerInfo{ID: "a", Capacity: 3}) // capacity update
			if d := p.Pick(Request{Function: "f"}); d.Worker != "a" {
				t.Fatalf("after raising capacity: %+v, want a", d)
			}
			if got := p.InFlight("a"); got != 3 {
				t.Fatalf("in-flight on a = %d, want 3", got)
			}
		})
	}
}

func TestHugeExternalLoadStaysBounded(t *testing.T) {
	for _, name := range Names() {
		p, _ := New(name, Config{})
		joinN(p, 2, 0)
		p.ExternalLoad("w0", 1<<40)
		if d := mustPick(t, p, "f", t0); name != NameHash && name != NameOWHash && name != NameRandom && d.Worker != "w1" {
			t.Fatalf("%s: got %+v, want the unloaded worker", name, d)
		}
		p.ExternalLoad("w1", 1<<40)
		p.ExternalLoad("w0", 0)
		if d := mustPick(t, p, "g", t0); name != NameHash && name != NameOWHash && name != NameRandom && d.Worker != "w0" {
			t.Fatalf("%s: got %+v, want w0 after the loads swapped", name, d)
		}
	}
}
