package workersim

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pullsched/pullsched/workload"
)

// In these tests time is synctest's fake clock, so every duration is exact.

func TestLatencyMatchesTableVirtual(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, Config{Cores: 16, Seed: 1}) // default jitter ±2%
		h := s.Handler()
		profiles := workload.FunctionBench()
		var wg sync.WaitGroup
		for _, p := range profiles {
			wg.Go(func() {
				for _, want := range []struct {
					lat  time.Duration
					cold string
				}{{p.Cold, "1"}, {p.Warm, "0"}} {
					a := call(t, h, "POST", "/run/"+p.Name+"-3", string(p.Payload))
					if a.Code != http.StatusOK || a.Cold != want.cold {
						t.Errorf("%s: code %d cold %q, want 200 %q: %s", p.Name, a.Code, a.Cold, want.cold, a.Raw)
						continue
					}
					if !within(a.Elapsed, want.lat, 0.05) || !within(ms(a), want.lat, 0.05) {
						t.Errorf("%s cold=%s: took %v (reported %v), table %v", p.Name, a.Cold, a.Elapsed, ms(a), want.lat)
					}
				}
			})
		}
		wg.Wait()
		st := s.Stats()
		if st.Cold != 8 || st.Warm != 8 || st.Invocations != 16 || st.Completed != 16 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestProcessorSharingEightOnFour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, Config{Cores: 4, Jitter: -1})
		h := s.Handler()
		fns := make([]string, 8)
		for i := range fns {
			fns[i] = "linpack"
		}
		for _, a := range parallel(t, h, fns) { // 8 cold starts fill 8 sandboxes
			if a.Cold != "1" {
				t.Fatalf("warm-up: %+v", a)
			}
		}
		one := call(t, h, "POST", "/run/linpack", "{}")
		if one.Cold != "0" || one.Elapsed != 58*time.Millisecond {
			t.Fatalf("single warm linpack: cold %s, %v; want warm, 58ms", one.Cold, one.Elapsed)
		}
		for _, a := range parallel(t, h, fns) {
			if a.Cold != "0" {
				t.Fatalf("expected warm: %+v", a)
			}
			if ratio := float64(a.Elapsed) / float64(one.Elapsed); ratio < 1.99 || ratio > 2.01 {
				t.Errorf("8 concurrent on 4 cores took %v = %.3f× one, want 2×", a.Elapsed, ratio)
			}
		}
	})
}

func TestProcessorSharingStaggered(t *testing.T) {
	// One core; A (100ms of work) alone for 50ms, then shares with B
	// (100ms): A ends at 150ms, B runs alone from then and ends at 200ms.
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, Config{Cores: 1, Jitter: -1,
			Default: workload.Profile{Cold: 100 * time.Millisecond, Warm: 100 * time.Millisecond}})
		h := s.Handler()
		var a, b answer
		var wg sync.WaitGroup
		wg.Go(func() { a = call(t, h, "GET", "/run/A", "") })
		time.Sleep(50 * time.Millisecond)
		wg.Go(func() { b = call(t, h, "GET", "/run/B", "") })
		wg.Wait()
		if a.Elapsed != 150*time.Millisecond || b.Elapsed != 150*time.Millisecond {
			t.Errorf("A took %v, B took %v; want 150ms each", a.Elapsed, b.Elapsed)
		}
		if a.Cold != "1" || b.Cold != "1" {
			t.Errorf("want cold starts, got %q %q", a.Cold, b.Cold)
		}
	})
}

func TestColdExtraIsWaitOrCPU(t *testing.T) {
	// Two cold linpack on one core: the 224ms cold extra overlaps as a wait,
	// then the two 58ms executions share the core (116ms): 340ms. With
	// ColdCPU the 2×282ms of work share the core: 564ms.
	for _, tc := range []struct {
		coldCPU bool
		want    time.Duration
	}{{false, 340 * time.Millisecond}, {true, 564 * time.Millisecond}} {
		t.Run(fmt.Sprint("ColdCPU=", tc.coldCPU), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSim(t, Config{Cores: 1, Jitter: -1, ColdCPU: tc.coldCPU})
				for _, a := range parallel(t, s.Handler(), []string{"linpack", "linpack"}) {
					if a.Elapsed != tc.want || a.Cold != "1" {
						t.Errorf("took %v cold %q, want %v cold", a.Elapsed, a.Cold, tc.want)
					}
				}
			})
		})
	}
}

func TestJitterIsSeededAndBounded(t *testing.T) {
	run := func(seed int64) []time.Duration {
		var out []time.Duration
		synctest.Test(t, func(t *testing.T) {
			s := newSim(t, Config{Jitter: 0.1, Seed: seed})
			h := s.Handler()
			for range 20 {
				a := call(t, h, "GET", "/run/matmul", "")
				out = append(out, a.Elapsed)
			}
		})
		return out
	}
	a, b, c := run(7), run(7), run(8)
	distinct := map[time.Duration]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, run %d: %v vs %v", i, a[i], b[i])
		}
		want := 125 * time.Millisecond
		if i == 0 {
			want = 284 * time.Millisecond
		}
		if !within(a[i], want, 0.1001) {
			t.Errorf("run %d took %v, want %v ±10%%", i, a[i], want)
		}
		distinct[a[i]] = true
	}
	if len(distinct) < 10 {
		t.Errorf("jitter produced only %d distinct durations", len(distinct))
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Error("different seeds gave identical runs")
	}
}

func TestTimeScale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, Config{TimeScale: 0.1, Jitter: -1})
		a := call(t, s.Handler(), "GET", "/run/dd-1", "")
		if a.Elapsed != 70600*time.Microsecond {
			t.Errorf("wall %v, want 70.6ms (706ms / 10)", a.Elapsed)
		}
		if a.Body.DurationMS != 706 {
			t.Errorf("reported %v ms, want 706 model ms", a.Body.DurationMS)
		}
	})
}

func TestMemoryPressureEvictsLRUIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newNoticeLog()
		s := newSim(t, Config{MemoryMB: 4 * 512, FreeGoal: -1, Jitter: -1,
			NotifyURL: "http://bridge.test/", NotifyClient: &http.Client{Transport: log}, Advertise: "10.0.0.7:8080"})
		h := s.Handler()
		for _, fn := range []string{"f-1", "f-2", "f-3", "f-4", "f-2"} {
			call(t, h, "GET", "/run/"+fn, "")
		}
		// LRU order now: f-1, f-3, f-4, f-2. The pool is full.
		if st := s.Stats(); st.Sandboxes != 4 || st.Evictions != 0 || st.Idle != 4 {
			t.Fatalf("before pressure: %+v", st)
		}
		call(t, h, "GET", "/run/f-5", "")
		call(t, h, "GET", "/run/f-6", "")
		synctest.Wait()
		if got := log.paths(); fmt.Sprint(got) != "[/destroySandbox/f-1 /destroySandbox/f-3]" {
			t.Fatalf("notices %v, want f-1 then f-3", got)
		}
		n := log.notices[0]
		if n.Method != "POST" || n.ContentType != "application/json" || fmt.Sprint(n.Body) != "map[host:10.0.0.7:8080]" {
			t.Errorf("notice %+v", n)
		}
		st := s.Stats()
		if st.Evictions != 2 || st.MemoryEvictions != 2 || st.NoticesSent != 2 || st.Sandboxes != 4 {
			t.Errorf("stats %+v", st)
		}
		if f := st.Functions["f-1"]; f.Evictions != 1 || f.Sandboxes != 0 {
			t.Errorf("f-1 stats %+v", f)
		}
		// f-2 survived as the most recently used: warm.
		if a := call(t, h, "GET", "/run/f-2", ""); a.Cold != "0" {
			t.Errorf("f-2 should be warm: %+v", a)
		}
	})
}

func TestFreeGoalKeepsSlotsFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 10 slots, 20% goal: at most 8 sandboxes while idle ones exist.
		s := newSim(t, Config{MemoryMB: 10 * 512, Jitter: -1})
		h := s.Handler()
		for i := range 12 {
			call(t, h, "GET", fmt.Sprintf("/run/g-%d", i), "")
			if st := s.Stats(); st.Sandboxes > 8 {
				t.Fatalf("after %d: %d sandboxes, goal keeps 2 of 10 free", i, st.Sandboxes)
			}
		}
		st := s.Stats()
		if st.Sandboxes != 8 || st.Evictions != 4 {
			t.Errorf("stats %+v, want 8 sandboxes and 4 evictions", st)
		}
		// The oldest were evicted: g-0..g-3 cold again, g-11 warm.
		if a := call(t, h, "GET", "/run/g-11", ""); a.Cold != "0" {
			t.Error("g-11 should be warm")
		}
		if a := call(t, h, "GET", "/run/g-0", ""); a.Cold != "1" {
			t.Error("g-0 should have been evicted")
		}
	})
}

func TestOutOfMemoryWaitsForRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Two slots, both busy: the third request waits for one to be
		// released, then evicts it and starts cold.
		s := newSim(t, Config{MemoryMB: 1024, FreeGoal: -1, Jitter: -1, Cores: 8})
		h := s.Handler()
		var got [3]answer
		var wg sync.WaitGroup
		wg.Go(func() { got[0] = call(t, h, "GET", "/run/linpack-1", "") }) // 282ms
		wg.Go(func() { got[1] = call(t, h, "GET", "/run/matmul-1", "") })  // 284ms
		synctest.Wait()
		wg.Go(func() { got[2] = call(t, h, "GET", "/run/pyaes-1", "") }) // waits 282ms, then 329ms
		synctest.Wait()
		if st := s.Stats(); st.Waiting != 1 {
			t.Errorf("waiting = %d, want 1", st.Waiting)
		}
		wg.Wait()
		if got[2].Code != 200 || got[2].Elapsed != 611*time.Millisecond || got[2].Cold != "1" {
			t.Errorf("third request: %+v, want cold in 282+329ms", got[2])
		}
		if st := s.Stats(); st.Evictions != 1 || st.Functions["linpack-1"].Evictions != 1 {
			t.Errorf("want linpack-1 evicted: %+v", st)
		}
	})
}

func TestQueueLimitAnswers429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, Config{MemoryMB: 512, FreeGoal: -1, QueueLimit: 1})
		as := parallel(t, s.Handler(), []string{"a", "b", "c"})
		codes := map[int]int{}
		for _, a := range as {
			codes[a.Code]++
			if a.Code == http.StatusTooManyRequests && a.Raw != "lambda function queue is full\n" {
				t.Errorf("429 body %q", a.Raw)
			}
		}
		if codes[200] != 2 || codes[429] != 1 {
			t.Errorf("codes %v, want two 200 and one 429", codes)
		}
		if st := s.Stats(); st.Rejected != 1 {
			t.Errorf("rejected = %d", st.Rejected)
		}
	})
}

func TestKeepAliveExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := newNoticeLog()
		s := newSim(t, Config{KeepAlive: 10 * time.Second, TimeScale: 0.5, Jitter: -1,
			NotifyURL: "http://bridge.test", NotifyClient: &http.Client{Transport: log}, Advertise: "w:1"})
		h := s.Handler()
		call(t, h, "GET", "/run/float_operation", "") // idle from now
		time.Sleep(4900 * time.Millisecond)           // 9.8s of model time
		synctest.Wait()
		if st := s.Stats(); st.Idle != 1 || st.Evictions != 0 {
			t.Fatalf("before expiry: %+v", st)
		}
		if a := call(t, h, "GET", "/run/float_operation", ""); a.Cold != "0" {
			t.Fatal("reuse before expiry should be warm") // and restarts the keep-alive
		}
		time.Sleep(4900 * time.Millisecond)
		synctest.Wait()
		if st := s.Stats(); st.Idle != 1 {
			t.Fatalf("reuse did not restart keep-alive: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		st := s.Stats()
		if st.Idle != 0 || st.Sandboxes != 0 || st.KeepAliveEvictions != 1 || st.NoticesSent != 1 {
			t.Fatalf("after expiry: %+v", st)
		}
		if p := log.paths(); fmt.Sprint(p) != "[/destroySandbox/float_operation]" {
			t.Errorf("notices %v", p)
		}
		if a := call(t, h, "GET", "/run/float_operation", ""); a.Cold != "1" {
			t.Error("after expiry the start should be cold")
		}
	})
}

func TestSilentEvictions(t *testing.T) {
	for _, frac := range []float64{1, 0.5} {
		t.Run(fmt.Sprint(frac), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := newNoticeLog()
				s := newSim(t, Config{MemoryMB: 512, FreeGoal: -1, SilentEvictions: frac, Seed: 3,
					NotifyURL: "http://bridge.test", NotifyClient: &http.Client{Transport: log}})
				h := s.Handler()
				for i := range 41 {
					call(t, h, "GET", fmt.Sprintf("/run/x-%d", i), "")
				}
				synctest.Wait()
				st := s.Stats()
				if st.Evictions != 40 {
					t.Fatalf("evictions %d, want 40", st.Evictions)
				}
				if int64(len(log.paths())) != st.NoticesSent || st.NoticesSent+st.SilentEvictions != 40 {
					t.Errorf("notices %d sent %d silent %d", len(log.paths()), st.NoticesSent, st.SilentEvictions)
				}
				if frac == 1 && st.SilentEvictions != 40 {
					t.Errorf("all should be silent: %+v", st)
				}
				if frac == 0.5 && (st.SilentEvictions < 10 || st.SilentEvictions > 30) {
					t.Errorf("silent %d of 40 at 0.5", st.SilentEvictions)
				}
			})
		})
	}
}

func TestAbandon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, Config{Jitter: -1, Cores: 1})
		h := s.Handler()

		// Client leaves during the cold start: the sandbox is discarded.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { callCtx(t, ctx, h, "GET", "/run/linpack", "") })
		time.Sleep(100 * time.Millisecond)
		cancel()
		wg.Wait()
		if st := s.Stats(); st.Sandboxes != 0 || st.Abandoned != 1 || st.Evictions != 0 {
			t.Fatalf("after abandoned cold start: %+v", st)
		}

		call(t, h, "GET", "/run/linpack", "") // one idle sandbox now

		// Client leaves during execution: the sandbox is released idle and
		// stops using the core.
		ctx, cancel = context.WithCancel(context.Background())
		wg.Go(func() { callCtx(t, ctx, h, "GET", "/run/linpack", "") })
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if st := s.Stats(); st.Running != 1 {
			t.Fatalf("running %d", st.Running)
		}
		cancel()
		wg.Wait()
		if st := s.Stats(); st.Running != 0 || st.Idle != 1 || st.Abandoned != 2 || st.Completed != 1 {
			t.Fatalf("after abandoned run: %+v", st)
		}
		if a := call(t, h, "GET", "/run/linpack", ""); a.Cold != "0" || a.Elapsed != 58*time.Millisecond {
			t.Errorf("next call %+v, want warm 58ms on a free core", a)
		}
	})
}

func TestCloseEndsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Config{MemoryMB: 512, FreeGoal: -1})
		if err != nil {
			t.Fatal(err)
		}
		h := s.Handler()
		var as []answer
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, fn := range []string{"a", "b"} { // one running, one waiting
			wg.Go(func() {
				a := call(t, h, "GET", "/run/"+fn, "")
				mu.Lock()
				as = append(as, a)
				mu.Unlock()
			})
		}
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for _, a := range as {
			if a.Code != http.StatusServiceUnavailable {
				t.Errorf("in-flight at close: %d %q", a.Code, a.Raw)
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		if a := call(t, h, "GET", "/status", ""); a.Code != http.StatusServiceUnavailable {
			t.Errorf("status after close: %d", a.Code)
		}
		if a := call(t, h, "GET", "/run/a", ""); a.Code != http.StatusServiceUnavailable {
			t.Errorf("run after close: %d", a.Code)
		}
	})
}
