package scheduler

import (
	"testing"

	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

// External load is what other replicas placed on a worker. Bridges split
// their in-flight count by scheduler, so a heartbeat written before our own
// calls completed must not turn them into phantom load.
func TestExternalLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		own  int // our in-flight count on w1 now
		rec  topics.Worker
		want int
	}{
		{"idle worker", 0, topics.Worker{InFlight: 0}, 0},
		{"old bridge: total less ours", 2, topics.Worker{InFlight: 5}, 3},
		{"old bridge: total below ours", 4, topics.Worker{InFlight: 1}, 0},
		{"only ours, since completed", 0, topics.Worker{InFlight: 4, InFlightBy: map[string]int{"s1": 4}}, 0},
		{"ours stale, others counted", 1, topics.Worker{InFlight: 7, InFlightBy: map[string]int{"s1": 4, "s2": 3}}, 3},
		{"several others and unnamed", 0, topics.Worker{InFlight: 6, InFlightBy: map[string]int{"s2": 3, "s3": 2, "": 1}}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := policy.New(policy.NamePull, policy.Config{})
			if err != nil {
				t.Fatal(err)
			}
			pol.WorkerJoined(policy.WorkerInfo{ID: "w1"})
			for range tc.own {
				pol.Pick(policy.Request{Function: "f"})
			}
			st := &state{cfg: Config{ID: "s1"}, pol: pol}
			rec := tc.rec
			rec.ID = "w1"
			if got := st.external(&rec, "w1"); got != tc.want {
				t.Errorf("external = %d, want %d", got, tc.want)
			}
		})
	}
}
