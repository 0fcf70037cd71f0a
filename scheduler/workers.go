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
	rec topics.Worker
	// at is when this scheduler last heard from the worker, on its own
	// clock: when it applied the worker's latest record (see heardAt),
	// moved forward by any time it could not read the workers topic (see
	// covered). Never the sender's claim: clocks are not trusted.
	at          time.Time
	requested   bool // its invoker topic was asked for
	provisioned bool // its invoker topic exists
	rot         rotation
	capacity    int // as last given to the policy
	// stopped is when its bridge said it stopped (Stopped), until no
	// assignment is left waiting there or a bridge serves it again; see
	// strand.go.
	stopped     time.Time
	strandAsked bool      // the driver is reading which assignments were left untaken
	strandRetry time.Time // after a failed read, when to try again
}

// Reasons a worker record is ignored, the values of the reason label.
const (
	ignoredNoBridge      = "no_bridge"      // neither a bridge's record nor the admin API's
	ignoredBridgeChanged = "bridge_changed" // another bridge claims a worker whose bridge is alive
)

// workerFeed is what the loop knows about how well it hears the workers
// topic.
type workerFeed struct {
	// heard: every record written to the workers topic before it has
	// been applied. Zero until the topic was first read to its end.
	// Silence is judged against it, not against now, so a scheduler that
	// cannot read the topic judges no worker silent.
	heard   time.Time
	applied map[int32]int64 // partition → offset after the last record applied
	probe   *workersProbe   // end offsets not yet all applied
	// holdFrom is when decisions started waiting for the topic to be read
	// again (see holding); zero when they do not wait. holdOver: that
	// wait is over and decisions go on without the topic.
	holdFrom time.Time
	holdOver bool
}

// workersProbe is the workers topic's end offsets as listed at a time.
type workersProbe struct {
	at   time.Time
	ends map[int32]int64
}

// workerRecord applies one record of the workers topic, read at offset off
// of partition part with Kafka timestamp ts; rec is nil for a record that
// is not a worker (a tombstone, or undecodable), which only moves the
// offset on.
//
// Which records are believed. Anyone who can write to the workers topic
// can write a well-formed record, so:
//   - a record that names its bridge (the invokerbridge serving the
//     worker, sidecar or pool) is a heartbeat; only such a record puts
//     a worker in rotation;
//   - a record with Source admin and no bridge is the admin API's word: it
//     registers (the invoker topic is made ready) or removes a worker, but
//     does not put it in rotation, and does not overwrite a bridge's
//     heartbeat while it stays active;
//   - any other record (no bridge, not admin) is ignored;
//   - a record naming another bridge than the worker's latest record is
//     ignored while that worker is fresh, unless that latest record said
//     it was leaving (draining or removed): one bridge serves a worker,
//     and a new one takes over when the old one said goodbye or went
//     silent for the heartbeat timeout.
//
// Ignored records are logged and counted (worker_records_ignored_total).
func (st *state) workerRecord(rec *topics.Worker, ts time.Time, part int32, off int64) {
	if off+1 > st.feed.applied[part] {
		st.feed.applied[part] = off + 1
	}
	defer st.checkProbe()
	if rec == nil {
		return
	}
	now := st.now()
	w := st.workers[rec.ID]
	if why := st.believe(rec, w, now); why != "" {
		st.m.ignored.WithLabelValues(why).Inc()
		ev := st.log.Warn().Str("worker", rec.ID).Str("source", rec.Source).Str("bridge", rec.Bridge).
			Int32("partition", part).Int64("offset", off).Str("reason", why)
		if w != nil {
			ev = ev.Str("serving_bridge", w.rec.Bridge)
		}
		ev.Msg("worker record ignored")
		return
	}
	if w == nil {
		w = &worker{}
		st.workers[rec.ID] = w
	}
	if rec.State != topics.WorkerRemoved && !w.requested && st.provision != nil {
		w.requested = true
		st.provision(rec.ID)
	}
	if rec.Bridge == "" && rec.State == topics.WorkerActive && w.rec.Bridge != "" {
		return // the admin API (re-)adds a worker its bridge already serves
	}
	w.rec = *rec
	w.at = st.heardAt(ts, now)
	switch {
	case rec.Bridge != "" && rec.Stopped:
		if w.stopped.IsZero() {
			w.stopped = now
		}
	case rec.Bridge != "":
		w.stopped = time.Time{} // served again: its bridge takes what is left
	}
	st.evaluate(rec.ID, w, now)
}

// believe returns why rec is ignored, or "" (see workerRecord).
func (st *state) believe(rec *topics.Worker, w *worker, now time.Time) string {
	switch {
	case rec.Bridge == "" && rec.Source != topics.SourceAdmin:
		return ignoredNoBridge
	case rec.Bridge != "" && w != nil && w.rec.Bridge != "" && rec.Bridge != w.rec.Bridge &&
		w.rec.State == topics.WorkerActive && st.fresh(w, now):
		return ignoredBridgeChanged
	}
	return ""
}

// heardAt is when a record applied now counts as heard: now, except while
// the topic is replayed at start-up, when it is the record's Kafka
// timestamp (if any), never later than now.
func (st *state) heardAt(ts, now time.Time) time.Time {
	if st.feed.heard.IsZero() && !ts.IsZero() && ts.Before(now) {
		return ts
	}
	return now
}

// fresh reports whether w was heard from within the heartbeat timeout of
// the last moment up to which this scheduler has read the workers topic.
func (st *state) fresh(w *worker, now time.Time) bool {
	ref := st.feed.heard
	if ref.IsZero() { // replaying at start-up
		ref = now
	}
	return ref.Sub(w.at) <= st.cfg.HeartbeatTimeout
}

// workersProbe notes the end offsets of the workers topic as listed at at;
// once every record below them is applied, the topic is heard up to at.
// A probe still waiting is kept (a newer one could be chased for ever).
func (st *state) workersProbe(at time.Time, ends map[int32]int64) {
	if st.feed.probe == nil {
		st.feed.probe = &workersProbe{at: at, ends: ends}
	}
	st.checkProbe()
}

// checkProbe completes the waiting probe if its ends are all applied. A
// partition no record was ever read from counts as read: no worker's
// silence can be misjudged from it.
func (st *state) checkProbe() {
	p := st.feed.probe
	if p == nil {
		return
	}
	for part, end := range p.ends {
		if got, ok := st.feed.applied[part]; ok && got < end {
			return
		}
	}
	st.feed.probe = nil
	st.covered(p.at)
}

// covered notes that every record of the workers topic written before at
// has been applied. If the topic had not been heard for longer than the
// heartbeat timeout before that, the silence of that gap is this
// scheduler's, not the workers': it is not counted against them.
func (st *state) covered(at time.Time) {
	prev := st.feed.heard
	if !at.After(prev) {
		return
	}
	st.feed.heard = at
	if gap := at.Sub(prev); !prev.IsZero() && gap > st.cfg.HeartbeatTimeout {
		for _, w := range st.workers {
			if w.at.Before(prev) {
				w.at = w.at.Add(gap)
			}
		}
		st.m.deafGaps.Inc()
		st.log.Warn().Dur("gap", gap).Msg("workers topic read again after a gap; the silence of the gap is not held against workers")
	}
	if !st.feed.holdFrom.IsZero() {
		st.log.Info().Dur("held", st.now().Sub(st.feed.holdFrom)).Msg("workers topic caught up; decisions resume")
		st.feed.holdFrom, st.feed.holdOver = time.Time{}, false
		st.dirty = true
	}
}

// deaf reports whether this scheduler has not been able to read the
// workers topic for longer than the heartbeat timeout, so its rotation may
// be out of date.
func (st *state) deaf(now time.Time) bool {
	return !st.feed.heard.IsZero() && now.Sub(st.feed.heard) > st.cfg.HeartbeatTimeout
}

// holding reports whether decisions wait for the workers topic: arrivals
// stay in the pending queue, none is placed or rejected, while the
// scheduler is deaf, from the first decision it has to make in that state
// for at most two heartbeat timeouts; then it decides on the rotation as
// it last heard it (which silence has not emptied: see fresh).
func (st *state) holding(now time.Time) bool {
	if !st.deaf(now) {
		st.feed.holdFrom, st.feed.holdOver = time.Time{}, false
		return false
	}
	if st.feed.holdFrom.IsZero() {
		st.feed.holdFrom = now
		st.log.Warn().Time("heard", st.feed.heard).Msg("workers topic not read for longer than the heartbeat timeout; decisions wait")
	}
	if now.Sub(st.feed.holdFrom) < 2*st.cfg.HeartbeatTimeout {
		return true
	}
	if !st.feed.holdOver {
		st.feed.holdOver = true
		st.log.Warn().Time("heard", st.feed.heard).Msg("workers topic still not read; deciding on the rotation as last heard")
	}
	return false
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
	fresh := st.fresh(w, now)
	want := rotNone
	switch w.rec.State {
	case topics.WorkerActive:
		switch {
		case !fresh || !w.provisioned || w.rec.Bridge == "":
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
// rotation, in-flight and heard-age gauges.
func (st *state) sweepWorkers(now time.Time) {
	if !st.feed.heard.IsZero() {
		st.m.heardAge.Set(max(now.Sub(st.feed.heard), 0).Seconds())
	}
	n := 0
	for id, w := range st.workers {
		if w.rot != rotNone && !st.fresh(w, now) {
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
	if n > 0 {
		st.lastInRotation = now
	}
	st.checkStranded(now)
}

// rotationLost reports whether the rotation emptied less than two
// heartbeat timeouts ago. Arrivals then wait (pending, up to their
// deadline) rather than being answered 503 no_workers: after a broker
// outage the workers' first heartbeats come a few seconds after the
// scheduler reads the topic again (chaos broker-restart: 419 such 503s
// with four live workers).
func (st *state) rotationLost(now time.Time) bool {
	return !st.lastInRotation.IsZero() && now.Sub(st.lastInRotation) < 2*st.cfg.HeartbeatTimeout
}
