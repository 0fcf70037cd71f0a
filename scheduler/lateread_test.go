package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/pullsched/pullsched/topics"
)

// Under overload the scheduler reads the workers topic late: its reader
// fetches seldom, or its loop is busy, so records are applied in bursts
// seconds after the bridge wrote them. A
// worker heartbeating every second must stay in rotation all the same —
// freshness is judged against how far the topic has been read (probes of
// its end offsets), not against the wall clock — and a worker that stops
// must still leave, later by no more than the reading delay. (Issue 12's
// 503 no_workers under overload came from heartbeats saying unhealthy when
// the bridge's health probe timed out, not from this.)
func TestWorkersReadLateStayFresh(t *testing.T) {
	const (
		step     = 100 * time.Millisecond
		beat     = time.Second
		probe    = 300 * time.Millisecond
		stopAt   = 12 * time.Second
		duration = 24 * time.Second
	)
	for _, tc := range []struct{ delay, fetch time.Duration }{
		{0, step}, {2500 * time.Millisecond, step}, {10 * time.Second, step},
		{0, 4 * time.Second}, {time.Second, 6 * time.Second},
	} {
		delay := tc.delay
		t.Run(fmt.Sprintf("read %s late every %s", tc.delay, tc.fetch), func(t *testing.T) {
			r := newFeedRig(t)
			t0 := r.clock.Now()
			var written []time.Duration // when each record was written, by offset
			left := time.Duration(-1)
			for at := time.Duration(0); at <= duration; at += step {
				if at%beat == 0 && at < stopAt {
					written = append(written, at)
				}
				for at%tc.fetch == 0 && int(r.off) < len(written) && written[r.off]+delay <= at {
					r.record(topics.Worker{ID: "w1", State: topics.WorkerActive, Source: topics.SourceSidecar,
						Healthy: true, Bridge: "b-w1", At: t0.Add(written[r.off])})
				}
				if at%probe == 0 {
					r.st.workersProbe(r.clock.Now(), map[int32]int64{0: int64(len(written))})
				}
				r.st.sweepWorkers(r.clock.Now())
				rot := r.rot("w1")
				switch {
				case at < delay+tc.fetch || left >= 0:
				case at < stopAt && rot != rotActive:
					t.Fatalf("at %s, heartbeating every %s and read %s late: rotation %d, want active", at, beat, delay, rot)
				case rot == rotNone:
					left = at
				}
				r.clock.Advance(step)
			}
			// The last heartbeat was written at stopAt-beat; silence counts
			// from when it was read, and is noticed once the topic is read
			// past it (at most a probe interval and the delay later).
			last := stopAt - beat
			if latest := last + delay + tc.fetch + r.st.cfg.HeartbeatTimeout + 2*probe + step; left < 0 || left > latest {
				t.Fatalf("stopped heartbeating at %s: left the rotation at %s, want by %s", last, left, latest)
			}
		})
	}
}
