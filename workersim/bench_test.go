package workersim

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkStep measures one scheduler event (charge elapsed time, look for
// finishes, re-arm the timer) with n runnable invocations.
func BenchmarkStep(b *testing.B) {
	for _, n := range []int{8, 64, 512} {
		b.Run(fmt.Sprint("runnable=", n), func(b *testing.B) {
			s, err := New(Config{Cores: 4, MemoryMB: 512 * n})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.mu.Lock()
			defer s.mu.Unlock()
			now := time.Now()
			for range n {
				j := &job{fn: "f", prof: s.cfg.Default, arrived: now, done: make(chan struct{})}
				j.waitElem = s.waiters.PushBack(j)
			}
			s.dispatch(now)
			for j := range s.initing { // skip the cold starts
				delete(s.initing, j)
				j.phase, j.rem = phRun, 1e18
				s.running[j] = struct{}{}
			}
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(time.Microsecond)
				s.step(now)
			}
		})
	}
}

// BenchmarkInvocation measures the CPU cost of one warm invocation through
// the handler, with the simulated work scaled down to almost nothing.
func BenchmarkInvocation(b *testing.B) {
	s, err := New(Config{TimeScale: 1e-6, Jitter: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	h := s.Handler()
	run := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/run/linpack", strings.NewReader(`{"n": 100}`)))
		return rec.Code
	}
	run() // the cold start
	b.ReportAllocs()
	for b.Loop() {
		if code := run(); code != 200 {
			b.Fatal(code)
		}
	}
}
