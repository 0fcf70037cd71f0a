package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

// phase is where an arrival is in its life on this replica.
type phase uint8

const (
	phasePending   phase = iota + 1 // in the pending queue or the retry list
	phaseProducing                  // assignment handed to the producer, not yet acknowledged
	phaseAssigned                   // assignment acknowledged; waiting for its completion
	phaseHeld                       // deferred by the policy: waiting for a warm instance
	phaseAdopted                    // assigned by a previous owner (see takeover); waiting for its completion
)

// job is one arrival this replica holds.
type job struct {
	a       *topics.Arrival
	d       delivery
	part    int32
	phase   phase
	worker  string
	warm    bool
	attempt int       // produces that failed so far
	gen     uint64    // bumped whenever the job changes hands, to ignore stale acks
	dl      time.Time // when the caller stops waiting (arrival deadline or arrived + DefaultTimeout)
	timeout time.Time // when an assignment is given up
	hidx    int
	assignT time.Time // when the assignment was decided
	until   time.Time // phaseHeld: when to stop waiting for a warm instance
	noWait  bool      // ask the policy without MayWait (a wait is over, or a retry)

	span trace.Span // tracing: the schedule span (trace.go); nil while tracing is off
}

// delivery is a consumed record as the core sees it: Done marks its offset
// as committable. *consumer.Delivery in the driver; a recorder in tests.
type delivery interface{ Done() }

// input is one record of a polled batch, decoded.
type input struct {
	rec *kgo.Record
	ev  topics.Event
	d   delivery
}

// effect is a record the core wants published. The driver publishes it and
// hands the broker's answer to done on the loop goroutine.
type effect struct {
	ctx   context.Context // carries the trace context, if any
	topic string
	ev    topics.Event
	done  func(error)
}

// state is the scheduler's core, everything the loop goroutine owns: jobs,
// the pending queue, timeouts, the worker registry and the rebalance
// bookkeeping. It never touches Kafka: it takes decoded records, acks and
// ticks, marks deliveries done, and queues the records to publish in out,
// which the driver (Scheduler) publishes after each call.
type state struct {
	cfg   Config
	log   zerolog.Logger
	m     *metrics
	pol   policy.Policy
	pname string
	idle  policy.IdleTracker   // nil when the policy keeps no idle queues
	forg  policy.IdleForgetter // nil likewise
	pend  *policy.Pending
	est   *policy.Estimator
	retry []*job             // assignments whose produce failed, served before pending
	warm  policy.WarmChecker // nil when the policy keeps no idle queues
	held  []*job             // deferred by the policy, in the order they were deferred
	heldN map[string]int     // held jobs per function
	jobs  map[string]*job
	heap  timeoutHeap
	seen  *recentSet

	fnPart  map[string]int32 // function -> its partition, as seen in records
	skipTo  map[int32]int64  // worker-events partition -> offsets below were applied by a rebuild
	workers map[string]*worker
	feed    workerFeed        // how well the workers topic is heard
	shed    shedder           // answers arrivals read too late 429 (shed.go)
	owned   map[int32]bool    // arrivals partitions this replica holds
	adopt   map[string]string // from the last takeover: arrival id → worker running it, "" if finished
	gen     uint64
	dirty   bool // something may have freed capacity: drain the pending queue

	lastSweep time.Time
	// lastInRotation is the last sweep that found a worker in rotation.
	lastInRotation time.Time

	names       topics.Names
	out         []effect            // to publish; taken by the driver
	provision   func(worker string) // asks for a worker's invoker topic; nil: none
	strandCheck strandCheck         // asks which assignments a stopped worker left untaken; nil: none
	ctx         context.Context     // parent of trace contexts
}

func newState(cfg Config, names topics.Names, m *metrics, log zerolog.Logger) (*state, error) {
	pol, err := policy.New(cfg.Policy, cfg.PolicyConfig)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	est, err := policy.NewEstimator(policy.EstimatorConfig{})
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	pend, err := policy.NewPending(cfg.Pending, max(cfg.PendingCap, 1), est)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	st := &state{adopt: map[string]string{}, names: names, ctx: context.Background(),
		cfg: cfg, log: log, m: m, pol: pol, pname: pol.Name(), pend: pend, est: est,
		jobs: map[string]*job{}, seen: newRecentSet(cfg.RecentIDs),
		fnPart: map[string]int32{}, skipTo: map[int32]int64{}, workers: map[string]*worker{}, owned: map[int32]bool{},
		feed: workerFeed{applied: map[int32]int64{}}, shed: newShedder(),
	}
	st.idle, _ = pol.(policy.IdleTracker)
	st.forg, _ = pol.(policy.IdleForgetter)
	st.warm, _ = pol.(policy.WarmChecker)
	st.heldN = map[string]int{}
	return st, nil
}

func (st *state) now() time.Time { return st.cfg.Clock() }

// emit queues ev for publishing on topic; done gets the broker's answer.
func (st *state) emit(ctx context.Context, topic string, ev topics.Event, done func(error)) {
	st.out = append(st.out, effect{ctx: ctx, topic: topic, ev: ev, done: done})
}

// takeOut returns the queued effects, reusing buf for the next round.
func (st *state) takeOut(buf []effect) []effect {
	out := st.out
	st.out = buf[:0]
	return out
}

// handleBatch decides a polled batch: arrivals are placed, queued or
// rejected; completions and evictions feed the policy.
func (st *state) handleBatch(batch []input) {
	now := st.now()
	arrivals := st.names.Arrivals()
	for _, in := range batch {
		r, d := in.rec, in.d
		switch ev := in.ev.(type) {
		case *topics.Arrival:
			if r.Topic != arrivals {
				d.Done()
				continue
			}
			st.fnPart[ev.Function] = r.Partition
			st.arrival(ev, in, now)
		case *topics.Completion:
			st.fnPart[ev.Function] = r.Partition
			if end, ok := st.skipTo[r.Partition]; ok && r.Offset < end && st.jobs[ev.ID] == nil {
				d.Done() // already applied by the rebuild
				continue
			}
			st.completion(ev, now)
			d.Done()
		case *topics.Eviction:
			st.fnPart[ev.Function] = r.Partition
			if end, ok := st.skipTo[r.Partition]; !ok || r.Offset >= end {
				st.pol.Evicted(ev.Worker, ev.Function, now)
			}
			d.Done()
		default:
			d.Done()
		}
	}
	st.afterChanges()
}

// arrival admits one arrival.
func (st *state) arrival(a *topics.Arrival, in input, now time.Time) {
	d := in.d
	if st.jobs[a.ID] != nil || st.seen.has(a.ID) {
		st.m.duplicates.WithLabelValues("redelivered").Inc()
		st.log.Debug().Str("id", a.ID).Str("fn", a.Function).Msg("arrival seen before; not assigned again")
		d.Done()
		return
	}
	worker, handled := st.adopt[a.ID]
	if handled && worker == "" {
		delete(st.adopt, a.ID)
		st.seen.add(a.ID)
		st.m.takenOver.WithLabelValues("finished").Inc()
		d.Done()
		return
	}
	j := &job{a: a, d: d, part: in.rec.Partition, hidx: -1, dl: a.Deadline}
	st.traceStart(j, in.rec)
	if j.dl.IsZero() {
		base := a.Arrived
		if base.IsZero() || base.After(now) {
			base = now
		}
		j.dl = base.Add(st.cfg.DefaultTimeout)
	}
	if !now.Before(j.dl) {
		st.m.timeouts.WithLabelValues("pending").Inc()
		st.reject(j, topics.ReasonTimeout, "deadline passed before the arrival was scheduled")
		return
	}
	if !handled && st.shedLate(j, in.rec, now) {
		return
	}
	st.jobs[a.ID] = j
	if handled {
		st.adoptJob(j, worker, now)
		return
	}
	if st.pend.Len() > 0 || len(st.retry) > 0 || st.holding(now) {
		st.enqueue(j, now) // keep order: earlier arrivals are waiting; or the rotation may be stale
		return
	}
	st.place(j, now)
}

// adoptJob takes over j, which a previous owner assigned to worker: it is
// not placed again but waited for like an assignment of this replica's own.
// The policy does not count it (the worker's heartbeats report it as the
// previous owner's load), so its completion releases no slot.
func (st *state) adoptJob(j *job, worker string, now time.Time) {
	delete(st.adopt, j.a.ID)
	st.gen++
	j.gen, j.phase, j.worker, j.assignT = st.gen, phaseAdopted, worker, now
	j.timeout = j.dl.Add(st.cfg.TimeoutMargin)
	st.heap.push(j)
	st.m.takenOver.WithLabelValues("adopted").Inc()
	st.traceAssigned(j, "adopted")
	j.traceAcked()
	j.d.Done() // its assignment is on the broker already
}

// release gives the policy back the slot j took, unless j was adopted.
func (st *state) release(j *job, c policy.Completion) {
	if j.phase == phaseAdopted {
		if c.OK && st.idle != nil {
			st.idle.Idle(c.Worker, c.Function, c.Now)
		}
		return
	}
	st.pol.Completed(c)
}

// place asks the policy for j and acts on the answer. It reports the code.
func (st *state) place(j *job, now time.Time) policy.Code {
	t0 := time.Now()
	dec := st.pol.Pick(policy.Request{Function: j.a.Function, Class: j.a.Class, MemoryMB: j.a.MemoryMB, Now: now,
		MayWait: st.warm != nil && !j.noWait, Waiting: st.heldN[j.a.Function]})
	st.m.decisionSec.Observe(time.Since(t0).Seconds())
	switch dec.Code {
	case policy.Placed:
		st.assign(j, dec, now)
	case policy.Deferred:
		st.hold(j, dec.Until)
	case policy.NoCapacity:
		if j.phase != phasePending {
			st.enqueue(j, now)
		}
	default: // NoWorkers
		if st.rotationLost(now) {
			// Workers were in rotation a moment ago: most often their
			// heartbeats are only late (a broker outage they are still
			// reconnecting from), so wait for them as for capacity.
			if j.phase != phasePending {
				st.enqueue(j, now)
			}
			return policy.NoCapacity
		}
		delete(st.jobs, j.a.ID)
		st.reject(j, topics.ReasonNoWorkers, "no worker is in rotation")
	}
	return dec.Code
}

// hold keeps j until a warm instance of its function frees or until.
func (st *state) hold(j *job, until time.Time) {
	j.phase, j.until = phaseHeld, until
	st.held = append(st.held, j)
	st.heldN[j.a.Function]++
	st.m.held.Inc()
	st.m.decisions.WithLabelValues(st.pname, OutcomeDeferred).Inc()
	j.traceEvent(OutcomeDeferred)
}

// unhold forgets j's place among the held jobs' counts; the caller drops
// it from st.held.
func (st *state) unhold(j *job) {
	if n := st.heldN[j.a.Function] - 1; n > 0 {
		st.heldN[j.a.Function] = n
	} else {
		delete(st.heldN, j.a.Function)
	}
	st.m.held.Dec()
	j.phase = 0
}

// drainHeld asks again for every held job whose function now has a warm
// instance ready, or whose wait is over (then without MayWait).
func (st *state) drainHeld(now time.Time) {
	if len(st.held) == 0 {
		return
	}
	var ready []*job
	keep := st.held[:0]
	for _, j := range st.held {
		switch {
		case st.jobs[j.a.ID] != j || j.phase != phaseHeld:
			// answered or dropped meanwhile
		case !now.Before(j.until):
			j.noWait = true
			ready = append(ready, j)
		case st.warm.WarmReady(j.a.Function):
			ready = append(ready, j)
		default:
			keep = append(keep, j)
		}
	}
	clear(st.held[len(keep):])
	st.held = keep
	for _, j := range ready {
		st.unhold(j)
		st.place(j, now)
	}
}

// nextWake returns when the earliest held job's wait is over, zero if none.
func (st *state) nextWake() time.Time {
	var t time.Time
	for _, j := range st.held {
		if j.phase == phaseHeld && (t.IsZero() || j.until.Before(t)) {
			t = j.until
		}
	}
	return t
}

// enqueue puts j in the pending queue, or answers 429 if it is full.
func (st *state) enqueue(j *job, now time.Time) {
	err := st.pend.Push(policy.Item{ID: j.a.ID, Function: j.a.Function, Class: j.a.Class, Enqueued: now, Deadline: j.dl})
	if err != nil {
		delete(st.jobs, j.a.ID)
		reason := topics.ReasonOverloaded
		if !errors.Is(err, policy.ErrPendingFull) {
			reason = topics.ReasonNoWorkers
		}
		st.reject(j, reason, err.Error())
		return
	}
	j.phase = phasePending
	st.m.decisions.WithLabelValues(st.pname, OutcomePending).Inc()
	j.traceEvent(OutcomePending)
}

// assign publishes the assignment of j to the worker the policy chose.
func (st *state) assign(j *job, dec policy.Decision, now time.Time) {
	st.gen++
	j.gen, j.phase, j.worker, j.warm, j.assignT = st.gen, phaseProducing, dec.Worker, dec.Warm, now
	j.timeout = j.dl.Add(st.cfg.TimeoutMargin)
	st.heap.push(j)
	outcome := OutcomeFallback
	if dec.Warm {
		outcome = OutcomeWarm
	}
	st.m.decisions.WithLabelValues(st.pname, outcome).Inc()
	url := ""
	if w := st.workers[dec.Worker]; w != nil {
		url = w.rec.URL
	}
	a := j.a
	asg := &topics.Assignment{
		ID: a.ID, Function: a.Function, Payload: a.Payload, Reply: a.Reply, Worker: dec.Worker, WorkerURL: url,
		Class: a.Class, Warm: dec.Warm, Arrived: a.Arrived, Assigned: now, Deadline: a.Deadline, Scheduler: st.cfg.ID,
	}
	gen := j.gen
	st.emit(st.traceAssigned(j, outcome), st.names.Invoker(dec.Worker), asg, func(err error) {
		st.assignAcked(j, gen, err)
	})
}

// assignAcked handles the broker's answer to an assignment.
func (st *state) assignAcked(j *job, gen uint64, err error) {
	if err == nil {
		j.d.Done()
		j.traceAcked()
		if !j.a.Arrived.IsZero() {
			st.m.assignSec.Observe(max(st.now().Sub(j.a.Arrived), 0).Seconds())
		}
		if j.gen == gen && j.phase == phaseProducing {
			j.phase = phaseAssigned
		}
		return
	}
	st.m.produceErrors.WithLabelValues("assignment").Inc()
	if j.gen != gen || st.jobs[j.a.ID] != j {
		return // revoked or already answered (timed out) meanwhile
	}
	now := st.now()
	st.log.Warn().Err(err).Str("id", j.a.ID).Str("fn", j.a.Function).Str("worker", j.worker).
		Int("attempt", j.attempt+1).Msg("assignment not published")
	st.heap.remove(j)
	st.pol.Completed(policy.Completion{Worker: j.worker, Function: j.a.Function, OK: false, Now: now})
	j.attempt++
	st.gen++
	j.gen = st.gen
	if j.attempt >= st.cfg.MaxAttempts {
		delete(st.jobs, j.a.ID)
		st.reject(j, topics.ReasonUnavailable,
			fmt.Sprintf("assignment could not be published after %d attempts: %v", j.attempt, err))
		return
	}
	j.phase = phasePending
	j.noWait = true
	st.retry = append(st.retry, j)
	st.dirty = true
}

// reject answers j with a result of the scheduler's own and finishes it.
// The caller has removed j from jobs.
func (st *state) reject(j *job, reason, msg string) {
	status, _ := topics.ReasonStatus(reason) // every reason the scheduler gives has one
	st.seen.add(j.a.ID)
	st.m.results.WithLabelValues(reason).Inc()
	j.traceRejected(status, reason)
	if reason != topics.ReasonTimeout || j.phase != phaseAssigned && j.phase != phaseProducing && j.phase != phaseAdopted {
		st.m.decisions.WithLabelValues(st.pname, OutcomeRejected).Inc()
	}
	if j.a.Reply == "" { // fire and forget: nobody to tell
		j.d.Done()
		return
	}
	res := &topics.Result{ID: j.a.ID, Function: j.a.Function, Status: status, Reason: reason, Error: msg,
		Worker: j.worker, Source: "scheduler", At: st.now()}
	d := j.d
	id := j.a.ID
	st.emit(j.traceCtx(st.ctx), st.names.Results(j.a.Reply), res, func(err error) {
		if err != nil {
			st.m.produceErrors.WithLabelValues("result").Inc()
			st.log.Warn().Err(err).Str("id", id).Msg("result not published")
		}
		// Done either way: a result that cannot be written must not stop
		// the partition; the caller's own timeout answers it.
		d.Done()
	})
}

// completion applies a worker's report.
func (st *state) completion(c *topics.Completion, now time.Time) {
	start := policy.StartUnknown
	switch c.Start {
	case topics.StartCold:
		start = policy.StartCold
	case topics.StartWarm:
		start = policy.StartWarm
	}
	dur := time.Duration(c.DurationMs * float64(time.Millisecond))
	if c.OK {
		st.est.Observe(c.Function, dur)
	}
	j := st.jobs[c.ID]
	if j == nil || (j.phase != phaseProducing && j.phase != phaseAssigned && j.phase != phaseAdopted) || j.worker != c.Worker {
		// Not ours (another replica's, timed out, or from before a
		// rebalance): the worker still holds an idle sandbox.
		st.m.unknown.Inc()
		if c.OK && st.idle != nil {
			st.idle.Idle(c.Worker, c.Function, now)
		}
		return
	}
	st.heap.remove(j)
	delete(st.jobs, c.ID)
	st.seen.add(c.ID)
	st.release(j, policy.Completion{Worker: c.Worker, Function: c.Function, OK: c.OK, Start: start,
		WarmHint: j.warm, Duration: dur, Now: now})
	st.dirty = true
}

// afterChanges drains the pending queue if capacity may have been freed.
func (st *state) afterChanges() {
	if st.dirty || st.pend.Len() > 0 || len(st.retry) > 0 || len(st.held) > 0 {
		st.dirty = false
		st.drain(st.now())
	}
	st.m.pending.Set(float64(st.pend.Len() + len(st.retry)))
}

// drain places waiting arrivals while the policy finds room: the retry list
// first, then the pending queue in its discipline's order.
// Nothing is placed while decisions wait for the workers topic (holding).
func (st *state) drain(now time.Time) {
	if st.holding(now) {
		return
	}
	for len(st.retry) > 0 {
		j := st.retry[0]
		code := st.place(j, now)
		if code == policy.NoCapacity {
			return
		}
		st.retry[0] = nil
		st.retry = st.retry[1:]
	}
	st.drainHeld(now)
	for st.pend.Len() > 0 {
		it, _ := st.pend.Peek()
		j := st.jobs[it.ID]
		if j == nil {
			st.pend.Pop()
			continue
		}
		code := st.place(j, now)
		if code == policy.NoCapacity {
			return
		}
		st.pend.Pop()
	}
}

// expireWaiting answers 504 the jobs of list whose deadline has passed and
// returns the others that still wait there; waiting reports whether a job
// still does (and may release what it holds when its deadline has passed).
func (st *state) expireWaiting(list []*job, now time.Time, waiting func(*job) bool, what string) []*job {
	keep := list[:0]
	for _, j := range list {
		switch {
		case !waiting(j):
		case now.Before(j.dl):
			keep = append(keep, j)
		default:
			delete(st.jobs, j.a.ID)
			st.m.timeouts.WithLabelValues("pending").Inc()
			st.reject(j, topics.ReasonTimeout, "deadline passed while waiting for "+what)
		}
	}
	clear(list[len(keep):])
	return keep
}

// tick expires deadlines and assignment timeouts and sweeps heartbeats.
func (st *state) tick() {
	now := st.now()
	for _, it := range st.pend.Expire(now) {
		if j := st.jobs[it.ID]; j != nil {
			delete(st.jobs, it.ID)
			st.m.timeouts.WithLabelValues("pending").Inc()
			st.reject(j, topics.ReasonTimeout, "deadline passed while waiting for a worker")
		}
	}
	st.retry = st.expireWaiting(st.retry, now, func(*job) bool { return true }, "a worker")
	st.held = st.expireWaiting(st.held, now, func(j *job) bool {
		if st.jobs[j.a.ID] != j || j.phase != phaseHeld {
			return false // answered or dropped meanwhile
		}
		if !now.Before(j.dl) {
			st.unhold(j)
		}
		return true
	}, "a warm instance")
	for j := st.heap.due(now); j != nil; j = st.heap.due(now) {
		delete(st.jobs, j.a.ID)
		st.release(j, policy.Completion{Worker: j.worker, Function: j.a.Function, OK: false, Now: now})
		st.m.timeouts.WithLabelValues("assigned").Inc()
		st.log.Info().Str("id", j.a.ID).Str("fn", j.a.Function).Str("worker", j.worker).
			Msg("no completion within the timeout; slot released")
		st.reject(j, topics.ReasonTimeout,
			fmt.Sprintf("no completion from worker %s within the deadline", j.worker))
		st.dirty = true
	}
	if now.Sub(st.lastSweep) >= st.cfg.HeartbeatTimeout/10 {
		st.lastSweep = now
		st.sweepWorkers(now)
	}
	st.afterChanges()
}

// assigned applies a rebuild after partitions were assigned.
func (st *state) assigned(parts map[string][]int32, rb rebuildResult) {
	for f, p := range rb.fnPart {
		st.fnPart[f] = p
	}
	for p, end := range rb.ends {
		st.skipTo[p] = end
	}
	st.adopt = rb.adopt
	if len(parts[st.names.Arrivals()]) > 0 {
		st.shed.restart(st.now()) // a backlog of arrivals may follow: see shedGrace
	}
	for _, p := range parts[st.names.Arrivals()] {
		st.owned[p] = true
	}
	n := 0
	if st.idle != nil {
		for _, e := range rb.events {
			if e.idle {
				st.idle.Idle(e.worker, e.function, e.at)
				n++
			}
		}
	}
	st.m.rebuilt.Add(float64(n))
	st.log.Info().Interface("partitions", parts).Int("idle", n).Msg("partitions assigned; idle state rebuilt")
	st.dirty = true
	st.afterChanges()
}

// revoked lets partitions go: every book of those partitions is dropped;
// their unfinished records go to the next owner. The driver has flushed
// the produces in flight and applied their answers first, so arrivals whose
// assignment was acknowledged are marked done (and committed by the
// consumer right after) rather than handed over.
func (st *state) revoked(parts map[string][]int32) {
	ps := map[int32]bool{}
	for _, p := range parts[st.names.Arrivals()] {
		ps[p] = true
		delete(st.owned, p)
	}
	wps := parts[st.names.WorkerEvents()]
	if len(ps) == 0 && len(wps) == 0 {
		return
	}
	now := st.now()
	dropped, unacked := 0, 0
	for id, j := range st.jobs {
		if !ps[j.part] {
			continue
		}
		delete(st.jobs, id)
		dropped++
		j.traceRevoked()
		switch j.phase {
		case phasePending:
			st.pend.Remove(id)
		case phaseHeld:
			st.unhold(j) // its entry in st.held is skipped from now on
		case phaseProducing, phaseAssigned, phaseAdopted:
			if j.phase == phaseProducing {
				unacked++
			}
			st.heap.remove(j)
			st.release(j, policy.Completion{Worker: j.worker, Function: j.a.Function, OK: false, Now: now})
		}
		st.gen++
		j.gen = st.gen
	}
	if len(st.retry) > 0 {
		keep := st.retry[:0]
		for _, j := range st.retry {
			if !ps[j.part] {
				keep = append(keep, j)
			}
		}
		clear(st.retry[len(keep):])
		st.retry = keep
	}
	st.m.duplicates.WithLabelValues("revoked_unacked").Add(float64(unacked))
	gone := map[int32]bool{}
	for _, p := range wps {
		gone[p] = true
		delete(st.skipTo, p)
	}
	forgotten := 0
	for f, p := range st.fnPart {
		if gone[p] || ps[p] {
			delete(st.fnPart, f)
			if st.forg != nil {
				st.forg.Forget(f)
			}
			forgotten++
		}
	}
	st.log.Info().Interface("partitions", parts).Int("dropped", dropped).Int("unacked", unacked).
		Int("functions", forgotten).Msg("partitions revoked")
	st.afterChanges()
}

// sortEvents orders rebuild events by time, stable for equal stamps.
func sortEvents(evs []rebuildEvent) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
}
