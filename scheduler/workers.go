package scheduler

import (
	"time"

	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

// rotation is how the policy currently sees a worker.
type rotation uint8

const (
	rotNone     rotation = iota // unknown to the policy, or left
	rotActive                   // receives new work
	rotDraining                 // finishes what it has, gets nothing new
)

// worker is the registry's book on one worker.
type worker struct {
	rec         topics.Worker
	at          time.Time // freshness: the record's at, else its Kafka timestamp
	requested   bool      // its invoker topic was asked for
	provisioned bool      // its invoker topic exists
	rot         rotation
	capacity    int // as last given to the policy
}

// workerRecord applies one record of the workers topic.
func (st *state) workerRecord(rec *topics.Worker, ts time.Time) {
	w := st.workers[rec.ID]
	if w == nil {
		w = &worker{}
		st.workers[rec.ID] = w
	}
	w.rec = *rec
	w.at = rec.At
	if w.at.IsZero() {
		w.at = ts
	}
	if rec.State != topics.WorkerRemoved && !w.requested && st.s.prov != nil {
		w.requested = true
		st.s.prov.request(rec.ID)
	}
	st.evaluate(rec.ID, w, st.now())
}

// provisioned notes that the invoker topic of id exists.
func (st *state) provisioned(id string) {
	if w := st.workers[id]; w != nil {
		w.provisioned = true
		st.evaluate(id, w, st.now())
	}
}

// unprovisioned counts workers that want a topic not yet confirmed.
func (st *state) unprovisioned() int {
	n := 0
	for _, w := range st.workers {
		if w.requested && !w.provisioned && w.rec.State == topics.WorkerActive {
			n++
		}
	}
	return n
}

// evaluate moves a worker into, within or out of the rotation as its
// latest record and its freshness say.
func (st *state) evaluate(id string, w *worker, now time.Time) {
	fresh := now.Sub(w.at) <= st.cfg.HeartbeatTimeout
	want := rotNone
	switch w.rec.State {
	case topics.WorkerActive:
		switch {
		case !fresh || !w.provisioned:
			want = rotNone
		case w.rec.Healthy:
			want = rotActive
		default:
			want = rotDraining
		}
	case topics.WorkerDraining:
		want = rotDraining
	}
	capacity := w.rec.Capacity
	if capacity == 0 {
		capacity = st.cfg.DefaultCapacity
	}
	switch want {
	case rotActive:
		if w.rot != rotActive || w.capacity != capacity {
			st.pol.WorkerJoined(policy.WorkerInfo{ID: id, Capacity: capacity})
			if w.rot != rotActive {
				st.log.Info().Str("worker", id).Int("capacity", capacity).Msg("worker in rotation")
			}
			w.capacity = capacity
			st.dirty = true
		}
	case rotDraining:
		if w.rot == rotActive {
			st.pol.WorkerDraining(id)
			st.log.Info().Str("worker", id).Str("state", w.rec.State).Bool("healthy", w.rec.Healthy).Msg("worker draining")
		}
	case rotNone:
		if w.rot != rotNone {
			st.pol.WorkerLeft(id)
			st.log.Info().Str("worker", id).Str("state", w.rec.State).Bool("fresh", fresh).Msg("worker out of rotation")
		}
	}
	if want == rotDraining && w.rot == rotNone {
		want = rotNone // a worker never active here needs no draining
	}
	w.rot = want
	if want != rotNone {
		st.pol.ExternalLoad(id, st.external(&w.rec, id))
	}
}

// external is the in-flight load on a worker that other scheduler
// replicas placed. Ours is counted exactly by the policy, so it must not
// come from the heartbeat: a heartbeat up to an interval old would turn
// calls we have since seen complete into phantom load. Bridges split their
// count by scheduler; for one that does not, the best estimate is the
// total less what we hold now.
func (st *state) external(rec *topics.Worker, id string) int {
	if rec.InFlightBy == nil {
		if rec.InFlight == 0 {
			return 0
		}
		return max(rec.InFlight-st.pol.InFlight(id), 0)
	}
	n := 0
	for sched, k := range rec.InFlightBy {
		if sched != st.cfg.ID {
			n += k
		}
	}
	return n
}

// sweepWorkers takes silent workers out of the rotation and refreshes the
// rotation and in-flight gauges.
func (st *state) sweepWorkers(now time.Time) {
	n := 0
	for id, w := range st.workers {
		if w.rot != rotNone && now.Sub(w.at) > st.cfg.HeartbeatTimeout {
			st.evaluate(id, w, now)
		}
		if w.rot == rotActive {
			n++
		}
		if w.rot != rotNone || st.pol.InFlight(id) > 0 {
			st.m.inflight.WithLabelValues(id).Set(float64(st.pol.InFlight(id)))
		} else {
			st.m.inflight.DeleteLabelValues(id)
		}
	}
	st.m.workers.Set(float64(n))
}
