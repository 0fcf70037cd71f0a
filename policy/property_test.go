package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// model is the test's independent book of the cluster, against which every
// decision of the policy under test is checked.
type model struct {
	state map[string]uint8
	cap   map[string]int
	ext   map[string]int
	own   map[string]int
}

func (m *model) eligible(id string) bool {
	return m.state[id] == stateActive && (m.cap[id] <= 0 || m.own[id]+m.ext[id] < m.cap[id])
}

func (m *model) anyActive() bool {
	for _, s := range m.state {
		if s == stateActive {
			return true
		}
	}
	return false
}

func (m *model) anyEligible() bool {
	for id := range m.state {
		if m.eligible(id) {
			return true
		}
	}
	return false
}

type assignment struct {
	worker, fn string
	warm       bool
}

// runRandom drives p with a seeded random sequence of n events, checking
// the properties after each, and returns the decisions made.
func runRandom(t *testing.T, p Policy, seed uint64, n int) []Decision {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 77))
	const nWorkers, nFuncs = 8, 20
	m := &model{state: map[string]uint8{}, cap: map[string]int{}, ext: map[string]int{}, own: map[string]int{}}
	pend, err := NewPending(DisciplinePriority, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []assignment
	var decisions []Decision
	arrivals, placed, rejected := 0, 0, 0
	now := t0
	worker := func() string { return fmt.Sprintf("w%d", rng.IntN(nWorkers)) }
	fn := func() string { // skewed: low indexes are hot
		return fmt.Sprintf("f%d", min(rng.IntN(nFuncs), rng.IntN(nFuncs)))
	}
	place := func(fnName string) Decision {
		d := p.Pick(Request{Function: fnName, Class: rng.IntN(3), Now: now})
		decisions = append(decisions, d)
		switch d.Code {
		case Placed:
			if m.state[d.Worker] != stateActive {
				t.Fatalf("event %d: placed on %s in state %d", len(decisions), d.Worker, m.state[d.Worker])
			}
			if !m.eligible(d.Worker) {
				t.Fatalf("event %d: placed on %s over capacity (own %d ext %d cap %d)",
					len(decisions), d.Worker, m.own[d.Worker], m.ext[d.Worker], m.cap[d.Worker])
			}
			m.own[d.Worker]++
			out = append(out, assignment{d.Worker, fnName, d.Warm})
			placed++
		case NoCapacity:
			if !m.anyActive() || m.anyEligible() {
				t.Fatalf("event %d: no capacity while active=%v eligible=%v", len(decisions), m.anyActive(), m.anyEligible())
			}
		case NoWorkers:
			if m.anyActive() {
				t.Fatalf("event %d: no workers while some are active", len(decisions))
			}
		default:
			t.Fatalf("event %d: invalid code %v", len(decisions), d.Code)
		}
		return d
	}
	drain := func() { // retry the pending head, as the scheduler does
		for {
			it, ok := pend.Peek()
			if !ok {
				return
			}
			if d := place(it.Function); d.Code != Placed {
				return
			}
			pend.Pop()
		}
	}
	for i := 0; i < n; i++ {
		now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		switch r := rng.IntN(100); {
		case r < 40:
			arrivals++
			f := fn()
			if d := place(f); d.Code == NoCapacity {
				if err := pend.Push(Item{ID: fmt.Sprint(i), Function: f, Class: rng.IntN(3), Enqueued: now}); err != nil {
					if !errors.Is(err, ErrPendingFull) {
						t.Fatal(err)
					}
					rejected++
				}
			} else if d.Code == NoWorkers {
				rejected++
			}
		case r < 70:
			if len(out) == 0 {
				continue
			}
			k := rng.IntN(len(out))
			a := out[k]
			out = slices.Delete(out, k, k+1)
			p.Completed(Completion{Worker: a.worker, Function: a.fn, OK: rng.IntN(10) > 0,
				Start: Start(rng.IntN(3)), WarmHint: a.warm, Duration: time.Millisecond, Now: now})
			m.own[a.worker]--
			drain()
		case r < 78:
			id := worker()
			c := rng.IntN(5)
			p.WorkerJoined(WorkerInfo{ID: id, Capacity: c})
			m.state[id], m.cap[id] = stateActive, c
			drain()
		case r < 81:
			id := worker()
			p.WorkerDraining(id)
			if s, ok := m.state[id]; ok && s == stateActive {
				m.state[id] = stateDraining
			}
		case r < 83:
			id := worker()
			p.WorkerLeft(id)
			if _, ok := m.state[id]; ok {
				m.state[id] = stateLeft
			}
		case r < 89:
			id, e := worker(), rng.IntN(4)
			p.ExternalLoad(id, e)
			if _, ok := m.state[id]; ok {
				m.ext[id] = e
			}
			drain()
		case r < 95:
			p.Evicted(worker(), fn(), now)
		default:
			if it, ok := p.(IdleTracker); ok {
				it.Idle(worker(), fn(), now)
			}
		}
		for w := 0; w < nWorkers; w++ {
			id := fmt.Sprintf("w%d", w)
			if got := p.InFlight(id); got != m.own[id] || got < 0 {
				t.Fatalf("event %d: InFlight(%s) = %d, want assigned-completed = %d", i, id, got, m.own[id])
			}
		}
	}
	// Every placement served one arrival, directly or from the pending queue.
	if arrivals != placed+pend.Len()+rejected {
		t.Fatalf("arrivals %d != placed %d + pending %d + rejected %d", arrivals, placed, pend.Len(), rejected)
	}
	return decisions
}

func TestPropertiesRandomSequences(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			for seed := uint64(1); seed <= 3; seed++ {
				p, err := New(name, Config{Seed: int64(seed), KeepAlive: 20 * time.Second, VirtualNodes: 20})
				if err != nil {
					t.Fatal(err)
				}
				runRandom(t, p, seed, 3000)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			run := func(policySeed int64) []Decision {
				p, err := New(name, Config{Seed: policySeed, KeepAlive: 20 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return runRandom(t, p, 42, 2000)
			}
			a, b := run(7), run(7)
			if !slices.Equal(a, b) {
				t.Fatal("same seed and events gave different decisions")
			}
		})
	}
	// The seed matters where the policy is random.
	p1, _ := New(NameRandom, Config{Seed: 1})
	p2, _ := New(NameRandom, Config{Seed: 2})
	joinN(p1, 10, 0)
	joinN(p2, 10, 0)
	same := 0
	for i := 0; i < 50; i++ {
		if p1.Pick(Request{Function: "f"}).Worker == p2.Pick(Request{Function: "f"}).Worker {
			same++
		}
	}
	if same == 50 {
		t.Fatal("different seeds gave identical random decisions")
	}
}
