package scheduler

import (
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/topics"
)

// arriveRead feeds one arrival of fn that arrived at the ingress lag ago
// (its Arrived stamp; with noStamp, only its record's timestamp says so).
func (r *coreRig) arriveRead(id string, lag time.Duration, noStamp bool) *marker {
	m := &marker{}
	at := r.clock.Now().Add(-lag)
	a := &topics.Arrival{ID: id, Function: "f", Reply: "c1", Arrived: at}
	rec := &kgo.Record{Topic: r.st.names.Arrivals(), Timestamp: at}
	if noStamp {
		a.Arrived = time.Time{}
	}
	r.st.handleBatch([]input{{rec: rec, ev: a, d: m}})
	return m
}

// The scheduler's own admission control: an arrival read more than
// ShedLag after it arrived is answered 429 overloaded at once, not placed;
// not while the scheduler reads a backlog of its own absence, cannot read
// the workers topic, or has no worker in rotation.
func TestCoreShedsLateArrivals(t *testing.T) {
	const lag = 500 * time.Millisecond
	past := func(r *coreRig) { r.clock.Advance(shedGrace + time.Second) } // the start-up grace is over
	for _, tc := range []struct {
		name    string
		cfg     func(*Config)
		setup   func(*coreRig)
		late    time.Duration // how late the arrival is read
		noStamp bool
		shed    bool
		wait    bool // decisions wait for the workers topic
	}{
		{name: "within the lag: placed", setup: past, late: lag / 2},
		{name: "over the lag: 429", setup: past, late: 2 * lag, shed: true},
		{name: "over the lag, only the record's timestamp: 429", setup: past, late: 2 * lag, noStamp: true, shed: true},
		{name: "lag set: 100ms", cfg: func(c *Config) { c.ShedLag = 100 * time.Millisecond }, setup: past, late: 200 * time.Millisecond, shed: true},
		{name: "off", cfg: func(c *Config) { c.ShedLag = -1 }, setup: past, late: time.Minute},
		{name: "off: zero, the default", cfg: func(c *Config) { c.ShedLag = 0 }, setup: past, late: time.Minute},
		{name: "just after partitions were assigned: the backlog is placed", late: 3 * time.Second},
		{name: "after an arrival within the lag, no grace", setup: func(r *coreRig) {
			r.arriveRead("early", 0, false)
			r.answer(nil)
		}, late: 2 * lag, shed: true},
		{name: "a rebalance restarts the grace", setup: func(r *coreRig) {
			past(r)
			r.st.assigned(map[string][]int32{r.st.names.Arrivals(): {0}}, rebuildResult{adopt: map[string]string{}})
		}, late: 2 * lag},
		{name: "workers topic not read: not judged", setup: func(r *coreRig) {
			past(r) // and nothing heard of the workers topic meanwhile: deaf
		}, late: 2 * lag, wait: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newCoreRig(t, []int32{0}, func(c *Config) {
				c.ShedLag = lag
				if tc.cfg != nil {
					tc.cfg(c)
				}
			})
			r.worker("w1", 0)
			if tc.setup != nil {
				tc.setup(r)
			}
			if !tc.wait {
				r.st.workersProbe(r.clock.Now(), map[int32]int64{0: r.off}) // heard up to now
				r.worker("w1", 0)
			}
			d := r.arriveRead("a1", tc.late, tc.noStamp)
			out := r.answer(nil)
			res, asg := resultsOf(out)["a1"], assignments(out)["a1"]
			switch {
			case tc.wait:
				if res != nil || asg != nil || d.done != 0 {
					t.Fatalf("result %+v, assignment %+v, marked %d; want it waiting (pending)", res, asg, d.done)
				}
				return
			case tc.shed:
				if res == nil || res.Status != http.StatusTooManyRequests || res.Reason != topics.ReasonOverloaded || asg != nil {
					t.Fatalf("result %+v, assignment %+v; want 429 overloaded and no assignment", res, asg)
				}
				if r.st.jobs["a1"] != nil {
					t.Error("a shed arrival is still held")
				}
			case asg == nil || res != nil:
				t.Fatalf("result %+v, assignment %+v; want it placed", res, asg)
			}
			if d.done != 1 {
				t.Errorf("delivery marked %d times, want once (after the answer was acknowledged)", d.done)
			}
		})
	}
}

// With no worker in rotation an arrival read late is not shed: the
// no-workers rules answer it (503 no_workers), as without shedding.
func TestCoreShedNeedsRotation(t *testing.T) {
	r := newCoreRig(t, []int32{0}, withShedLag)
	r.clock.Advance(shedGrace + time.Second)
	r.st.workersProbe(r.clock.Now(), nil)
	r.arriveRead("a1", 2*time.Second, false)
	if res := resultsOf(r.answer(nil))["a1"]; res == nil || res.Reason != topics.ReasonNoWorkers {
		t.Fatalf("result %+v, want 503 no_workers", res)
	}
}

// A scheduler that falls behind sheds the arrivals it reads too late and
// places again once it reads them within the lag; the counter and the
// read-lag histogram follow.
func TestCoreShedSpell(t *testing.T) {
	r := newCoreRig(t, []int32{0}, withShedLag)
	r.worker("w1", 0)
	r.arriveRead("a0", 0, false) // caught up once: armed
	r.answer(nil)
	for i, late := range []time.Duration{time.Second, 2 * time.Second, 600 * time.Millisecond, 100 * time.Millisecond} {
		id := string(rune('a' + i))
		r.arriveRead(id, late, false)
		out := r.answer(nil)
		shed := late > testShedLag
		if got := resultsOf(out)[id] != nil; got != shed {
			t.Fatalf("%s read %s late: shed %v, want %v", id, late, got, shed)
		}
	}
	if n := metricValue(t, r.st.shed.shed); n != 3 {
		t.Errorf("shed_total %v, want 3", n)
	}
	if !r.st.shed.shedding {
		t.Error("spell over right after an arrival was shed")
	}
	r.clock.Advance(spellQuiet)
	r.arriveRead("z", 0, false)
	if r.st.shed.shedding {
		t.Error("still in a spell after an arrival read within the lag, spellQuiet after the last shed")
	}
}

// Shedding is off unless configured (DefaultShedLag says why).
func TestConfigShedLagDefault(t *testing.T) {
	if got := (Config{}).WithDefaults().ShedLag; got > 0 {
		t.Fatalf("default shed lag %v, want off", got)
	}
	r := newCoreRig(t, []int32{0}, nil)
	r.worker("w1", 0)
	r.clock.Advance(shedGrace + time.Second)
	r.st.workersProbe(r.clock.Now(), map[int32]int64{0: r.off})
	r.worker("w1", 0)
	r.arriveRead("a0", 0, false)
	r.arriveRead("a1", time.Minute, false)
	if got := assignments(r.answer(nil)); got["a1"] == nil {
		t.Fatalf("an arrival read a minute late was not placed with the default config: %v", got)
	}
}

// testShedLag is the shed lag of the tests that turn shedding on.
const testShedLag = 500 * time.Millisecond

func withShedLag(c *Config) { c.ShedLag = testShedLag }

// Shedding that does not let the scheduler read any arrival within the
// bound for a whole window — as when its clock is ahead of the ingress's by
// more than the bound, so every arrival looks late — stops, and resumes once
// a window reads one within the bound.
func TestCoreShedStopsWhenFutile(t *testing.T) {
	r := newCoreRig(t, []int32{0}, withShedLag)
	r.worker("w1", 0)
	r.clock.Advance(shedGrace + time.Second)
	shedAt := func(i int, late time.Duration) bool {
		r.clock.Advance(100 * time.Millisecond)
		r.st.workersProbe(r.clock.Now(), map[int32]int64{0: r.off})
		r.worker("w1", 0) // heartbeats keep coming
		id := "a" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		r.arriveRead(id, late, false)
		return resultsOf(r.answer(nil))[id] != nil
	}
	skewed := testShedLag + 100*time.Millisecond // every arrival looks this late
	shed, placedFrom := 0, -1
	for i := range 60 { // 6s
		if shedAt(i, skewed) {
			if placedFrom >= 0 {
				t.Fatalf("arrival %d shed after arrival %d was placed", i, placedFrom)
			}
			shed++
		} else if placedFrom < 0 {
			placedFrom = i
		}
	}
	if shed == 0 || placedFrom < 0 || placedFrom > 2*int(shedWindow/(100*time.Millisecond))+1 {
		t.Fatalf("shed %d, placed from arrival %d; want shedding to stop within two windows", shed, placedFrom)
	}
	if !r.st.shed.futile {
		t.Fatal("not marked futile")
	}
	// A window that reads an arrival within the bound lets shedding resume.
	i := 60
	for end := r.clock.Now().Add(shedWindow + 200*time.Millisecond); r.clock.Now().Before(end); i++ {
		shedAt(i, 0)
	}
	if r.st.shed.futile {
		t.Fatal("still futile after a window with arrivals read at once")
	}
	if !shedAt(i, time.Second) {
		t.Fatal("a late arrival after shedding resumed was placed")
	}
}
