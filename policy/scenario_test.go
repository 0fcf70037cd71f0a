package policy

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2025, 5, 19, 12, 0, 0, 0, time.UTC)

// paperFunctions finds four function names that the hash policy maps as in
// the Hiku paper's section IV-C: F1 and F3 to W1, F2 and F4 to W2.
func paperFunctions(t *testing.T) (f1, f2, f3, f4 string) {
	t.Helper()
	p, err := New(NameHash, Config{})
	if err != nil {
		t.Fatal(err)
	}
	p.WorkerJoined(WorkerInfo{ID: "W1", Capacity: 4})
	p.WorkerJoined(WorkerInfo{ID: "W2", Capacity: 4})
	var on1, on2 []string
	for i := 0; i < 200 && (len(on1) < 2 || len(on2) < 2); i++ {
		fn := fmt.Sprintf("F-%d", i)
		d := p.Pick(Request{Function: fn, Now: t0})
		p.Completed(Completion{Worker: d.Worker, Function: fn, OK: true, Now: t0})
		if d.Worker == "W1" {
			on1 = append(on1, fn)
		} else {
			on2 = append(on2, fn)
		}
	}
	if len(on1) < 2 || len(on2) < 2 {
		t.Fatalf("could not find names hashing to both workers: %v %v", on1, on2)
	}
	return on1[0], on2[0], on1[1], on2[1]
}

// paperSim plays requests against a policy on the paper's two-worker
// cluster, tracking which worker holds an idle sandbox of which function,
// so that warm and cold starts are judged the same way for every policy.
type paperSim struct {
	p          Policy
	idle       map[string]map[string]int
	warm, cold int
}

func newPaperSim(t *testing.T, name string, seed int64, f1, f2, f3 string) *paperSim {
	t.Helper()
	p, err := New(name, Config{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	p.WorkerJoined(WorkerInfo{ID: "W1", Capacity: 4})
	p.WorkerJoined(WorkerInfo{ID: "W2", Capacity: 4})
	s := &paperSim{p: p, idle: map[string]map[string]int{
		"W1": {f1: 1, f3: 1},
		"W2": {f2: 1},
	}}
	if it, ok := p.(IdleTracker); ok {
		for w, fns := range s.idle {
			for fn := range fns {
				it.Idle(w, fn, t0)
			}
		}
	}
	return s
}

func (s *paperSim) run(t *testing.T, fns ...string) {
	t.Helper()
	for _, fn := range fns {
		d := s.p.Pick(Request{Function: fn, Now: t0})
		if d.Code != Placed {
			t.Fatalf("%s: Pick(%s) = %v, want placed", s.p.Name(), fn, d.Code)
		}
		warm := s.idle[d.Worker][fn] > 0
		if warm {
			s.idle[d.Worker][fn]--
			s.warm++
		} else {
			s.cold++
		}
		if _, tracks := s.p.(IdleTracker); tracks && d.Warm != warm {
			t.Fatalf("%s: Pick(%s) on %s has warm hint %v, but the sandbox state says %v", s.p.Name(), fn, d.Worker, d.Warm, warm)
		}
	}
}

func TestHikuSectionIVC(t *testing.T) {
	f1, f2, f3, f4 := paperFunctions(t)
	type want struct{ warm, cold, w1, w2 int }
	cases := []struct {
		name       string
		seq        []string
		pull, hash want
	}{
		{"1: F1,F2,F3,F4", []string{f1, f2, f3, f4}, want{3, 1, 2, 2}, want{3, 1, 2, 2}},
		{"3: F3,F1,F3,F1", []string{f3, f1, f3, f1}, want{2, 2, 2, 2}, want{2, 2, 4, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, pc := range []struct {
				policy string
				want   want
			}{{NamePull, tc.pull}, {NameHash, tc.hash}} {
				for seed := int64(0); seed < 8; seed++ {
					s := newPaperSim(t, pc.policy, seed, f1, f2, f3)
					s.run(t, tc.seq...)
					got := want{s.warm, s.cold, s.p.InFlight("W1"), s.p.InFlight("W2")}
					if got != pc.want {
						t.Fatalf("%s seed %d: warm/cold/W1/W2 = %+v, want %+v", pc.policy, seed, got, pc.want)
					}
				}
			}
		})
	}

	t.Run("2: F3,F3,F3,F2", func(t *testing.T) {
		seq := []string{f3, f3, f3, f2}
		h := newPaperSim(t, NameHash, 0, f1, f2, f3)
		h.run(t, seq...)
		if h.warm != 2 || h.cold != 2 || h.p.InFlight("W1") != 3 || h.p.InFlight("W2") != 1 {
			t.Fatalf("hash: warm %d cold %d loads %d/%d, want 2 2 3/1", h.warm, h.cold, h.p.InFlight("W1"), h.p.InFlight("W2"))
		}
		hashMax := 3
		outcomes := map[[2]int]bool{}
		for seed := int64(0); seed < 32; seed++ {
			s := newPaperSim(t, NamePull, seed, f1, f2, f3)
			s.run(t, seq...)
			l1, l2 := s.p.InFlight("W1"), s.p.InFlight("W2")
			if s.cold != h.cold || s.warm != h.warm {
				t.Fatalf("pull seed %d: warm %d cold %d, want the same as hash (%d, %d)", seed, s.warm, s.cold, h.warm, h.cold)
			}
			if max(l1, l2) > hashMax || l1+l2 != 4 {
				t.Fatalf("pull seed %d: loads %d/%d, want max <= %d", seed, l1, l2, hashMax)
			}
			outcomes[[2]int{l1, l2}] = true
		}
		// The third F3 meets a 1/1 tie; both ways must occur across seeds.
		if !outcomes[[2]int{2, 2}] || !outcomes[[2]int{1, 3}] {
			t.Fatalf("pull tie-break outcomes over 32 seeds = %v, want both 2/2 and 1/3", outcomes)
		}
	})
}
