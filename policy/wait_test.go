package policy

import (
	"testing"
	"time"
)

// pull-wait defers a request only while its function's busy instances are
// expected to free sooner than a cold start would take (scaled by
// WaitFactor), once it has seen both a warm and a cold run of it, and only
// when the caller allows it.
func TestPullWaitDefers(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	type learn struct{ warm, cold time.Duration }
	for _, tc := range []struct {
		name     string
		factor   float64
		learned  *learn // nil: no completed runs yet
		busy     int    // instances of f running
		waiting  int    // requests the caller already holds for f
		mayWait  bool
		noClock  bool
		want     Code
		wantWait time.Duration
	}{
		{name: "short function, one busy", learned: &learn{20 * ms, 400 * ms}, busy: 1, mayWait: true, want: Deferred, wantWait: 380 * ms},
		{name: "caller may not wait", learned: &learn{20 * ms, 400 * ms}, busy: 1, want: Placed},
		{name: "no clock", learned: &learn{20 * ms, 400 * ms}, busy: 1, mayWait: true, noClock: true, want: Placed},
		{name: "nothing learned yet", busy: 1, mayWait: true, want: Placed},
		{name: "nothing busy", learned: &learn{20 * ms, 400 * ms}, mayWait: true, want: Placed},
		{name: "every busy instance already awaited", learned: &learn{20 * ms, 400 * ms}, busy: 2, waiting: 2, mayWait: true, want: Placed},
		{name: "second waiter of two busy", learned: &learn{100 * ms, 400 * ms}, busy: 2, waiting: 1, mayWait: true, want: Deferred, wantWait: 300 * ms},
		// W (k+1)/(b+1) = 500*1/2 = 250ms is not below 2 x the extra 100ms.
		{name: "long function", learned: &learn{500 * ms, 600 * ms}, busy: 1, mayWait: true, want: Placed},
		{name: "long function, patient", factor: 4, learned: &learn{500 * ms, 600 * ms}, busy: 1, mayWait: true, want: Deferred, wantWait: 100 * ms},
		{name: "cold no slower than warm", learned: &learn{300 * ms, 300 * ms}, busy: 1, mayWait: true, want: Placed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(NamePullWait, Config{Seed: 1, WaitFactor: tc.factor})
			if err != nil {
				t.Fatal(err)
			}
			p.WorkerJoined(WorkerInfo{ID: "w1"})
			p.WorkerJoined(WorkerInfo{ID: "w2"})
			if tc.learned != nil {
				// A cold and a warm run of f on w1; the instance is then idle
				// and taken again by a busy run below, or evicted.
				d := p.Pick(Request{Function: "f", Now: t0})
				p.Completed(Completion{Worker: d.Worker, Function: "f", OK: true, Start: StartCold, Duration: tc.learned.cold, Now: t0})
				d = p.Pick(Request{Function: "f", Now: t0})
				p.Completed(Completion{Worker: d.Worker, Function: "f", OK: true, Start: StartWarm, Duration: tc.learned.warm, WarmHint: d.Warm, Now: t0})
				p.Evicted(d.Worker, "f", t0)
			}
			for range tc.busy {
				if d := p.Pick(Request{Function: "f", Now: t0}); d.Code != Placed {
					t.Fatalf("busy run not placed: %+v", d)
				}
			}
			now := t0
			if tc.noClock {
				now = time.Time{}
			}
			d := p.Pick(Request{Function: "f", Now: now, MayWait: tc.mayWait, Waiting: tc.waiting})
			if d.Code != tc.want {
				t.Fatalf("Pick = %+v, want %v", d, tc.want)
			}
			if tc.want == Deferred {
				if got := d.Until.Sub(now); got != tc.wantWait {
					t.Errorf("wait %v, want %v", got, tc.wantWait)
				}
				if d.Worker != "" || p.InFlight("w1")+p.InFlight("w2") != tc.busy {
					t.Errorf("a deferred decision counted load: %+v", d)
				}
			}
		})
	}
}

// Once a busy instance completes, the deferred request is placed warm on
// its worker; pull itself never defers.
func TestPullWaitThenWarm(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p, _ := New(NamePullWait, Config{Seed: 1})
	plain, _ := New(NamePull, Config{Seed: 1})
	for _, q := range []Policy{p, plain} {
		q.WorkerJoined(WorkerInfo{ID: "w1"})
		q.WorkerJoined(WorkerInfo{ID: "w2"})
		d := q.Pick(Request{Function: "f", Now: t0})
		q.Completed(Completion{Worker: d.Worker, Function: "f", OK: true, Start: StartCold, Duration: 400 * time.Millisecond, Now: t0})
		d = q.Pick(Request{Function: "f", Now: t0})
		q.Completed(Completion{Worker: d.Worker, Function: "f", OK: true, Start: StartWarm, Duration: 20 * time.Millisecond, Now: t0})
	}
	busy := p.Pick(Request{Function: "f", Now: t0, MayWait: true})
	if !busy.Warm {
		t.Fatalf("pull-wait did not reuse the idle instance: %+v", busy)
	}
	if d := p.Pick(Request{Function: "f", Now: t0, MayWait: true}); d.Code != Deferred {
		t.Fatalf("pull-wait placed instead of waiting: %+v", d)
	}
	if w := p.(WarmChecker); w.WarmReady("f") {
		t.Fatal("WarmReady with the only instance busy")
	}
	p.Completed(Completion{Worker: busy.Worker, Function: "f", OK: true, Start: StartWarm, Duration: 20 * time.Millisecond, WarmHint: true, Now: t0})
	if !p.(WarmChecker).WarmReady("f") {
		t.Fatal("not WarmReady after the instance completed")
	}
	if d := p.Pick(Request{Function: "f", Now: t0, MayWait: true, Waiting: 0}); d.Code != Placed || !d.Warm || d.Worker != busy.Worker {
		t.Fatalf("after completion: %+v, want warm on %s", d, busy.Worker)
	}

	plain.Pick(Request{Function: "f", Now: t0, MayWait: true})
	if d := plain.Pick(Request{Function: "f", Now: t0, MayWait: true}); d.Code != Placed || d.Warm {
		t.Fatalf("pull: %+v, want a cold placement", d)
	}
}
