package invokerbridge

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
)

// worker is what a runner knows of the worker it serves.
type worker struct {
	id       string
	url      string    // OpenLambda base URL, without a trailing '/'
	hostport string    // lower-case host:port its eviction notices name
	source   string    // topics.SourceSidecar or topics.SourceAdmin
	lean     *leanPool // its connections on the lean call path; nil: calls take the http.Client
}

// runner serves one worker: it consumes the worker's assignment topic, calls
// the worker with at most capacity calls at once, publishes completions and
// results, and heartbeats the worker's record.
type runner struct {
	b   *Bridge
	w   worker
	log zerolog.Logger

	slots    chan struct{} // one token per running call
	jobs     chan callJob  // unbuffered: hands a call to an idle call goroutine
	inflight atomic.Int64
	lastOK   atomic.Int64 // unix nanos of the last call the worker answered 2xx; 0: none

	byMu sync.Mutex
	by   map[string]int // calls in flight by the scheduler that placed them

	mu       sync.Mutex
	stopping bool          // no new calls start
	quit     chan struct{} // closed when stopping
	calls    sync.WaitGroup
	state    string // what heartbeats say: active, draining, removed
	final    string // state to write on stop: draining (default) or removed
	left     bool   // the consumer has left the group: records say Stopped (set once the heartbeat loop is over)

	cancel    context.CancelFunc // pool: stops run; set under Bridge.mu
	cancelled bool               // pool: cancel was called

	callCtx    context.Context // parent of every call; cancelled after the drain timeout
	callCancel context.CancelFunc

	cons atomic.Pointer[consumer.Consumer] // set while run's consumer exists

	assignedOnce sync.Once
	assigned     chan struct{} // closed once the consumer got its partition (and read what a predecessor finished)
	beatNow      chan struct{} // asks the heartbeat loop for a record now
	registered   chan struct{} // closed once the first record was written
	done         chan struct{} // closed when run returns
}

func newRunner(b *Bridge, w worker) *runner {
	if b.cfg.Transport == nil { // the default transport: the lean path does what it would
		w.lean = newLeanPool(w.url, b.cfg.MaxIdleConnsPerHost)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &runner{
		b:          b,
		w:          w,
		log:        b.log.With().Str("worker", w.id).Logger(),
		slots:      make(chan struct{}, b.cfg.concurrency()),
		jobs:       make(chan callJob),
		quit:       make(chan struct{}),
		state:      topics.WorkerActive,
		final:      topics.WorkerDraining,
		callCtx:    ctx,
		callCancel: cancel,
		assigned:   make(chan struct{}),
		beatNow:    make(chan struct{}, 1),
		registered: make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// countBy adds d to the calls in flight placed by scheduler id.
func (r *runner) countBy(id string, d int) {
	r.byMu.Lock()
	defer r.byMu.Unlock()
	if r.by == nil {
		r.by = map[string]int{}
	}
	if r.by[id] += d; r.by[id] <= 0 {
		delete(r.by, id)
	}
}

// inflightBy returns a copy of the calls in flight by scheduler, nil when
// there are none.
func (r *runner) inflightBy() map[string]int {
	r.byMu.Lock()
	defer r.byMu.Unlock()
	if len(r.by) == 0 {
		return nil
	}
	out := make(map[string]int, len(r.by))
	for id, n := range r.by {
		out[id] = n
	}
	return out
}

// setFinal sets the state written when the runner stops.
func (r *runner) setFinal(state string) {
	r.mu.Lock()
	r.final = state
	r.cancelled = true
	r.mu.Unlock()
}

// holdsPartition reports whether the runner got its worker's partition.
func (r *runner) holdsPartition() bool {
	select {
	case <-r.assigned:
		return true
	default:
		return false
	}
}

func (r *runner) currentState() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// ensureTopic creates the worker's assignment topic, retrying while retry is
// set, until ctx ends.
func (r *runner) ensureTopic(ctx context.Context, retry bool) error {
	adm := kadm.NewClient(r.b.prod.Client())
	spec := r.b.cfg.Topics.InvokerSpec(r.w.id)
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		_, err := topics.Ensure(ctx, adm, spec)
		if err == nil {
			return nil
		}
		if !retry || ctx.Err() != nil {
			return fmt.Errorf("ensure %s: %w", spec.Name, err)
		}
		r.log.Warn().Err(err).Str("topic", spec.Name).Msg("cannot create the assignment topic; retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure %s: %w", spec.Name, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// run serves the worker until ctx ends, then stops in order: stop taking
// assignments, drain the calls in flight (cancelling them after the drain
// timeout), commit and leave the group, write the last record. retry says
// whether setup failures are retried (pool) or returned (sidecar).
func (r *runner) run(ctx context.Context, retry bool) error {
	defer close(r.done)
	if r.w.lean != nil {
		defer r.w.lean.close()
	}
	defer r.callCancel()
	defer r.b.met.inflight.DeleteLabelValues(r.w.id)
	if err := r.ensureTopic(ctx, retry); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// Register before taking assignments (the consumer joins its group as
	// soon as it is created).
	r.heartbeat(ctx, topics.WorkerActive, true)
	close(r.registered)

	n := r.b.names
	cons, err := consumer.New(consumer.Config{
		Kafka:          r.b.conn(""),
		Group:          n.InvokerGroup(r.w.id),
		Topics:         []string{n.Invoker(r.w.id)},
		Decode:         func(_ string, b []byte) (topics.Event, error) { return topics.DecodeAssignment(b) },
		DLQ:            n.DLQ(),
		Producer:       r.b.prod,
		MaxOutstanding: r.b.cfg.concurrency(),
		MaxPollRecords: min(r.b.cfg.concurrency(), 256),
		SessionTimeout: r.b.cfg.SessionTimeout,
		// Static membership: a sidecar restarted after a crash takes its
		// worker's partition back at once rather than after the dead
		// member's session (10s).
		InstanceID: r.w.id,
		Logger:     r.log,
	}, r)
	if err != nil {
		r.left = true
		r.heartbeat(context.Background(), r.final, false) // take back the registration
		return fmt.Errorf("worker %s: %w", r.w.id, err)
	}

	r.cons.Store(cons)
	defer r.b.retire(r)
	consCtx, consCancel := context.WithCancel(context.Background())
	defer consCancel()
	consDone := make(chan error, 1)
	go func() { consDone <- cons.Run(consCtx) }()
	hbCtx, hbCancel := context.WithCancel(context.Background())
	defer hbCancel()
	hbDone := make(chan struct{})
	go r.heartbeatLoop(hbCtx, hbDone)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-consDone:
		consDone <- err
		if err != nil {
			runErr = fmt.Errorf("worker %s: consumer: %w", r.w.id, err)
		}
	}

	// Stop taking assignments and say so at once.
	r.mu.Lock()
	r.stopping = true
	close(r.quit)
	r.state = r.final
	final := r.final
	r.mu.Unlock()
	r.log.Info().Str("state", final).Int64("inflight", r.inflight.Load()).Msg("stopping: draining calls in flight")
	r.heartbeat(context.Background(), final, false)

	drained := make(chan struct{})
	go func() { r.calls.Wait(); close(drained) }()
	t := time.NewTimer(r.b.cfg.DrainTimeout)
	select {
	case <-drained:
		t.Stop()
	case <-t.C:
		r.log.Warn().Int64("inflight", r.inflight.Load()).Dur("drain_timeout", r.b.cfg.DrainTimeout).
			Msg("drain timeout: cancelling calls in flight")
		r.callCancel()
		<-drained
	}
	consCancel()
	<-consDone // commits what finished and leaves the group
	hbCancel()
	<-hbDone
	// The last record: everything taken is answered and committed, so the
	// schedulers may place again what is left in the topic (topics.Worker.Stopped).
	r.left = true
	r.heartbeat(context.Background(), final, false)
	return runErr
}

// heartbeatLoop writes the worker's record every interval until ctx ends.
func (r *runner) heartbeatLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(r.b.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.heartbeat(ctx, r.currentState(), true)
		case <-r.beatNow:
			r.heartbeat(ctx, r.currentState(), true)
		}
	}
}

// heartbeat checks the worker's health (when check is set) and writes its
// record with the given state.
func (r *runner) heartbeat(ctx context.Context, state string, check bool) {
	// Healthy only once the worker answers and the runner holds its
	// partition, having read what a crashed predecessor finished (which
	// takes seconds on a busy worker-events): work placed earlier would
	// only wait (issue 13's chaos suite: a restarted sidecar took 6s to
	// recover).
	healthy := false
	if check && r.holdsPartition() {
		var lastOK time.Time
		if ns := r.lastOK.Load(); ns != 0 {
			lastOK = time.Unix(0, ns)
		}
		healthy = judgeHealth(r.b.healthy(ctx, r.w.url), lastOK, time.Now(), r.b.cfg.HeartbeatInterval)
	}
	if ctx.Err() != nil {
		ctx = context.Background()
	}
	rec := &topics.Worker{
		ID:         r.w.id,
		URL:        r.w.url,
		State:      state,
		Source:     r.w.source,
		Capacity:   max(r.b.cfg.Capacity, 0),
		InFlight:   int(r.inflight.Load()),
		InFlightBy: r.inflightBy(),
		Healthy:    healthy,
		Bridge:     r.b.cfg.ID,
		Stopped:    r.left,
		At:         time.Now(),
	}
	pctx, cancel := context.WithTimeout(ctx, max(r.b.cfg.HeartbeatInterval, 2*time.Second))
	defer cancel()
	if err := r.b.hb.Publish(pctx, r.b.names.Workers(), rec); err != nil {
		r.b.met.hbErrors.WithLabelValues(r.w.id).Inc()
		r.log.Warn().Err(err).Msg("heartbeat not published")
		return
	}
	r.b.met.heartbeats.WithLabelValues(r.w.id, fmt.Sprint(healthy)).Inc()
}

// Handle implements consumer.Handler: each assignment becomes a call on a
// call goroutine of its own (see startCall), at most capacity at once;
// Handle waits for a free slot.
// Once the runner stops, assignments are left unfinished for re-delivery.
func (r *runner) Handle(_ context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		a, ok := d.Event.(*topics.Assignment)
		if !ok { // the decoder only yields assignments
			d.Done()
			continue
		}
		if a.Worker != r.w.id {
			r.log.Warn().Str("id", a.ID).Str("assigned_to", a.Worker).
				Msg("assignment names another worker; running it on this topic's worker")
		}
		switch r.b.dedupe.begin(a.ID, d) {
		case seenFinished:
			r.b.met.duplicates.WithLabelValues(r.w.id).Inc()
			r.log.Debug().Str("id", a.ID).Msg("duplicate of an answered assignment")
			d.Done()
			continue
		case seenLearned:
			r.b.met.duplicates.WithLabelValues(r.w.id).Inc()
			r.b.met.learnedDup.WithLabelValues(r.w.id).Inc()
			r.log.Info().Str("id", a.ID).Msg("duplicate of an assignment a predecessor answered; not run again")
			d.Done()
			continue
		case seenRunning:
			r.b.met.duplicates.WithLabelValues(r.w.id).Inc()
			r.log.Debug().Str("id", a.ID).Msg("duplicate of a running assignment")
			continue
		}
		select {
		case r.slots <- struct{}{}:
		case <-r.quit:
			r.b.dedupe.abort(a.ID)
			return
		}
		r.mu.Lock()
		if r.stopping {
			r.mu.Unlock()
			<-r.slots
			r.b.dedupe.abort(a.ID)
			return
		}
		r.calls.Add(1)
		r.mu.Unlock()
		r.inflight.Add(1)
		r.countBy(a.Scheduler, 1)
		r.b.met.inflight.WithLabelValues(r.w.id).Inc()
		r.startCall(callJob{a: a, d: d})
	}
}

// callJob is one assignment handed to a call goroutine.
type callJob struct {
	a *topics.Assignment
	d *consumer.Delivery
}

// callIdle is how long a call goroutine waits for another call before it
// exits.
const callIdle = 10 * time.Second

// startCall runs j on an idle call goroutine, or on a new one when none
// waits, so Handle never waits for one: there are about as many call
// goroutines as calls were in flight at once lately (those idle for
// callIdle exit; one that gave back its slot but is not waiting yet may
// make a new one start, so briefly up to twice the slots). A call goroutine is kept for the next call rather than started for
// each: the stack a call through HTTP and the producer grows to stays
// grown (a goroutine per call grew it anew every time: runtime.newstack
// and copystack were 6 % of the invoker's CPU on the chain, issue 12).
func (r *runner) startCall(j callJob) {
	select {
	case r.jobs <- j:
	default:
		go r.callLoop(j)
	}
}

// callLoop runs j, then the calls handed to it, until it has been idle
// for callIdle or the runner stops.
func (r *runner) callLoop(j callJob) {
	idle := time.NewTimer(callIdle)
	defer idle.Stop()
	for {
		r.runCall(j)
		idle.Reset(callIdle)
		select {
		case j = <-r.jobs:
		case <-idle.C:
			return
		case <-r.quit:
			return
		}
	}
}

// runCall serves one assignment and gives back its slot.
func (r *runner) runCall(j callJob) {
	defer r.calls.Done()
	defer func() {
		r.b.met.inflight.WithLabelValues(r.w.id).Dec()
		r.countBy(j.a.Scheduler, -1)
		r.inflight.Add(-1)
		<-r.slots
	}()
	r.serve(j.a, j.d)
}

// Assigned implements consumer.Handler. Before the partition's first
// assignment is handled it learns which activations a predecessor answered
// (see learnPredecessor).
func (r *runner) Assigned(ctx context.Context, parts map[string][]int32) {
	if len(parts) == 0 {
		return
	}
	r.learnPredecessor(ctx)
	r.assignedOnce.Do(func() {
		close(r.assigned)
		select { // healthy from now on: say so without waiting a tick
		case r.beatNow <- struct{}{}:
		default:
		}
	})
}

// Revoked implements consumer.Handler. Calls in flight go on: their
// answers are published, but their offsets are committed by the next
// owner, which does not run them again if their completions were published
// before it read worker-events (learnPredecessor).
func (r *runner) Revoked(context.Context, map[string][]int32) {}

// serve runs one assignment and finishes its delivery once the completion
// (and the result, when someone waits for it) is published. A completion
// that could not be published within PublishTimeout is given up, counted in
// unacknowledged_total, and its delivery finished all the same: the call
// has run, so running it again on re-delivery would be a duplicate, and a
// delivery left unfinished would count against the partition's limit until
// it paused for good. The scheduler's books learn of the call's end from
// the next heartbeat (in_flight_by) instead. Only a call cancelled by the
// drain timeout is left for re-delivery, as the partition is being let go.
func (r *runner) serve(a *topics.Assignment, d *consumer.Delivery) {
	ctx, span := r.traceStart(a, d)
	o := r.b.call(ctx, r.w, a, r.log)
	if o.ok {
		r.lastOK.Store(time.Now().UnixNano())
	}
	published := r.b.publishOutcome(publishCtx(span), r.w, a, o, r.log)
	traceEnd(span, o, published)
	if !published {
		r.b.met.lost.WithLabelValues(r.w.id).Inc()
		if r.callCtx.Err() != nil {
			r.b.dedupe.abort(a.ID)
			return
		}
	}
	d.Done()
	for _, dup := range r.b.dedupe.finish(a.ID) {
		dup.Done()
	}
}

// matches reports whether an eviction notice naming host is about this
// worker.
func (r *runner) matches(host string) bool { return strings.EqualFold(r.w.hostport, host) }
