package scheduler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/httpserve"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// Scheduler is one replica of the scheduler. Create it with New and run it
// with Run; several replicas with the same topics split the functions.
type Scheduler struct {
	cfg   Config
	log   zerolog.Logger
	names topics.Names
	group string
	srv   *httpserve.Server
	reg   *prometheus.Registry
	m     *metrics

	calls chan call
	inbox *inbox
	ready chan struct{}

	// Set by Run before the loop starts; read only by goroutines Run owns.
	prod    *producer.Producer
	adm     *kadm.Client
	loopCtx context.Context
	stopped chan struct{} // closed when the loop goroutine has returned

	prov *provisioner
	st   *state // the core; owned by the loop goroutine

	// Owned by the loop goroutine: buffers reused between batches.
	inBuf  []input
	outBuf []effect

	cons     atomic.Pointer[consumer.Consumer] // set by Run once created
	workerDL workerLetters                     // dead letters of the workers topic
}

// call is work the consumer's goroutine hands to the loop and waits for.
type call struct {
	fn   func()
	done chan struct{}
}

// New validates cfg and prepares a scheduler; it binds the HTTP listener
// (so Addr is known) but starts no goroutine and opens no Kafka connection.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	s := &Scheduler{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("part", "scheduler").Str("replica", cfg.ID).Logger(),
		names:   cfg.Topics.Names(),
		group:   cfg.Topics.Names().Prefix + "scheduler",
		calls:   make(chan call),
		inbox:   newInbox(),
		ready:   make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if cfg.Listen != "" {
		srv, err := httpserve.New(httpserve.Config{Addr: cfg.Listen, Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		s.srv, s.reg = srv, srv.Registry()
	} else {
		s.reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(s.reg)
	if err != nil {
		if s.srv != nil {
			_ = s.srv.Close()
		}
		return nil, err
	}
	s.m = m
	if err := s.registerConsumerMetrics(); err != nil {
		if s.srv != nil {
			_ = s.srv.Close()
		}
		return nil, err
	}
	st, err := newState(cfg, s.names, s.m, s.log)
	if err != nil {
		if s.srv != nil {
			_ = s.srv.Close()
		}
		return nil, err
	}
	s.st = st
	if err := st.shed.register(s.reg); err != nil {
		if s.srv != nil {
			_ = s.srv.Close()
		}
		return nil, err
	}
	cfg.Kafka.LogSecurity(s.log)
	return s, nil
}

// conn is the Kafka connection of one of the replica's clients: the
// configured one, named ID+role unless the operator fixed a client id.
func (s *Scheduler) conn(role string) kafkaconn.Config {
	return s.cfg.Kafka.WithClientID(s.cfg.ID + role)
}

// Ready is closed once the scheduler serves: it has read the workers topic
// to its end, provisioned the invoker topics of the workers it found, and
// started its group consumer.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Addr is the bound HTTP address, or "" without Listen.
func (s *Scheduler) Addr() string {
	if s.srv == nil {
		return ""
	}
	return s.srv.Addr()
}

// Registry is the Prometheus registry holding the scheduler's metrics (the
// HTTP server's when Listen is set).
func (s *Scheduler) Registry() *prometheus.Registry { return s.reg }

// Group is the consumer group of the scheduler replicas.
func (s *Scheduler) Group() string { return s.group }

// Run starts everything, serves until ctx ends, then shuts down in order:
// not ready → leave the group (which revokes the partitions: in-flight
// produces are flushed, finished offsets committed) → stop the loop → close
// the producer → stop the HTTP server. It returns nil on a clean stop.
func (s *Scheduler) Run(ctx context.Context) (err error) {
	var wg sync.WaitGroup
	fail := make(chan error, 4)

	// HTTP first, so /healthz answers while we start.
	httpCtx, httpStop := context.WithCancel(context.Background())
	defer func() {
		httpStop()
		wg.Wait()
	}()
	if s.srv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.srv.Serve(httpCtx); err != nil {
				fail <- err
			}
		}()
	}

	prod, err := producer.New(producer.Config{
		Kafka:       s.conn(""),
		Linger:      s.cfg.Linger,
		MaxBuffered: 20000,
		Logger:      s.log,
	})
	if err != nil {
		close(s.stopped)
		return fmt.Errorf("scheduler: %w", err)
	}
	s.prod = prod
	s.adm = kadm.NewClient(prod.Client())
	defer prod.Close(s.cfg.RevokeFlush)

	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = topics.EnsureAll(pctx, s.adm, s.cfg.Topics)
	pcancel()
	if err != nil {
		close(s.stopped)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("scheduler: provision topics: %w", kafkaconn.Explain(s.cfg.Kafka, err))
	}

	// The loop, and the helpers that feed it.
	loopCtx, loopStop := context.WithCancel(context.Background())
	s.loopCtx = loopCtx
	s.prov = newProvisioner(s)
	s.st.provision, s.st.ctx = s.prov.request, loopCtx // before the loop reads them
	s.st.strandCheck = func(worker string, since time.Time) { go s.readStranded(loopCtx, worker, since) }
	var loopWG sync.WaitGroup
	loopWG.Add(1)
	go func() {
		defer loopWG.Done()
		defer close(s.stopped)
		s.loop(loopCtx)
	}()
	helpers, helpersStop := context.WithCancel(context.Background())
	var helpWG sync.WaitGroup
	defer func() {
		helpersStop()
		helpWG.Wait()
		loopStop()
		loopWG.Wait()
	}()
	helpWG.Add(1)
	go func() {
		defer helpWG.Done()
		s.prov.run(helpers)
	}()
	caught := make(chan struct{})
	helpWG.Add(1)
	go func() {
		defer helpWG.Done()
		if err := s.followWorkers(helpers, caught); err != nil {
			fail <- err
		}
	}()

	// Do not decide before the membership is known.
	select {
	case <-caught:
	case <-ctx.Done():
		return nil
	case err := <-fail:
		return err
	}
	helpWG.Add(1)
	go func() {
		defer helpWG.Done()
		s.probeWorkers(helpers)
	}()
	s.waitProvisioned(ctx, 10*time.Second)

	timing := s.groupTiming(ctx)
	// Range assigns the same partition numbers of the two topics to the
	// same member, which co-partitioning needs; the default
	// cooperative-sticky balancer does not promise that.
	conn := s.conn("")
	conn.Opts = append([]kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}, conn.Opts...)
	cons, err := consumer.New(consumer.Config{
		Kafka:             conn,
		Group:             s.group,
		Topics:            []string{s.names.Arrivals(), s.names.WorkerEvents()},
		Decode:            s.decode,
		DLQ:               s.names.DLQ(),
		Producer:          prod,
		SessionTimeout:    timing.Session,
		HeartbeatInterval: timing.Heartbeat,
		Logger:            s.log,
	}, handler{s})
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	s.cons.Store(cons)
	if s.srv != nil {
		s.srv.SetReadyCheck(s.progress)
	}
	consCtx, consStop := context.WithCancel(context.Background())
	consDone := make(chan error, 1)
	go func() { consDone <- cons.Run(consCtx) }()
	if s.cfg.LagInterval > 0 {
		helpWG.Add(1)
		go func() {
			defer helpWG.Done()
			s.sampleLag(helpers)
		}()
	}
	if s.srv != nil {
		s.srv.SetReady(true)
	}
	close(s.ready)
	s.log.Info().Str("policy", s.cfg.Policy).Str("group", s.group).Msg("scheduler ready")

	select {
	case <-ctx.Done():
	case err = <-fail:
	case cerr := <-consDone:
		consDone <- cerr
		if cerr != nil {
			err = cerr
		}
	}
	if s.srv != nil {
		s.srv.SetReady(false)
	}
	// Leaving the group revokes every partition: the loop flushes the
	// producer, marks what was acknowledged, and the consumer commits.
	consStop()
	if cerr := <-consDone; cerr != nil && err == nil {
		err = cerr
	}
	s.log.Info().Msg("scheduler stopped")
	return err
}

// waitProvisioned waits, at most limit, until the invoker topics of the
// workers known so far exist, so the first arrivals find them in rotation.
func (s *Scheduler) waitProvisioned(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var waiting int
		if !s.do(func() { waiting = s.st.unprovisioned() }) || waiting == 0 {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// do runs fn on the loop goroutine and waits for it. It reports false if
// the loop has stopped.
func (s *Scheduler) do(fn func()) bool {
	c := call{fn: fn, done: make(chan struct{})}
	select {
	case s.calls <- c:
	case <-s.stopped:
		return false
	}
	select {
	case <-c.done:
		return true
	case <-s.stopped:
		return false
	}
}

func (s *Scheduler) decode(topic string, b []byte) (topics.Event, error) {
	if topic == s.names.Arrivals() {
		return topics.DecodeArrival(b)
	}
	return topics.DecodeWorkerEvent(b)
}

// loop is the goroutine that owns the state.
func (s *Scheduler) loop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	// wake fires when the earliest wait of a held (deferred) arrival is
	// over, so that it is placed then rather than at the next tick.
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()
	var wakeAt time.Time
	var buf []func()
	for {
		if w := s.st.nextWake(); !w.IsZero() && (wakeAt.IsZero() || w.Before(wakeAt)) {
			wakeAt = w
			wake.Reset(max(w.Sub(s.st.now()), 0))
		}
		select {
		case <-wake.C:
			wakeAt = time.Time{}
			s.st.afterChanges()
		case <-ctx.Done():
			return
		case c := <-s.calls:
			c.fn()
			close(c.done)
		case <-s.inbox.sig:
			q := s.inbox.take(buf)
			for i, f := range q {
				f()
				q[i] = nil
			}
			buf = q
			s.st.afterChanges()
		case <-t.C:
			s.st.tick()
		}
		s.apply()
	}
}

// apply publishes the records the core queued; each broker answer goes
// back to the core through the inbox.
func (s *Scheduler) apply() {
	out := s.st.takeOut(s.outBuf)
	for i, e := range out {
		s.prod.PublishAsync(e.ctx, e.topic, e.ev, func(err error) {
			s.inbox.put(func() { e.done(err) })
		})
		out[i] = effect{}
	}
	s.outBuf = out[:0]
}

// settle publishes what the core queued, waits (up to RevokeFlush) for
// every produce in flight and hands their answers to the core, so that a
// revoke marks acknowledged assignments done before the partitions go.
func (s *Scheduler) settle() {
	s.apply()
	ctx, cancel := context.WithTimeout(s.loopCtx, s.cfg.RevokeFlush)
	if err := s.prod.Flush(ctx); err != nil {
		s.log.Warn().Err(err).Msg("flush on revoke incomplete; unacknowledged assignments will be re-sent by the next owner")
	}
	cancel()
	for _, f := range s.inbox.take(nil) {
		f()
	}
}

// handler adapts the consumer's callbacks to the loop.
type handler struct{ s *Scheduler }

// Handle implements consumer.Handler: the batch is decided and its
// produces issued on the loop; acknowledgements arrive later.
func (h handler) Handle(_ context.Context, batch []*consumer.Delivery) {
	h.s.do(func() {
		in := h.s.inBuf[:0]
		for _, d := range batch {
			in = append(in, input{rec: d.Record, ev: d.Event, d: d})
		}
		h.s.st.handleBatch(in)
		clear(in)
		h.s.inBuf = in[:0]
	})
}

// Assigned implements consumer.Handler: the idle state of the new
// partitions is rebuilt from worker-events before any of their records is
// handled.
func (h handler) Assigned(ctx context.Context, parts map[string][]int32) {
	tk := h.s.readTakeover(ctx, parts[h.s.names.Arrivals()])
	rb := h.s.rebuild(ctx, parts[h.s.names.WorkerEvents()], tk)
	h.s.do(func() { h.s.st.assigned(parts, rb) })
}

// Revoked implements consumer.Handler.
func (h handler) Revoked(_ context.Context, parts map[string][]int32) {
	h.s.do(func() {
		h.s.settle()
		h.s.st.revoked(parts)
	})
}

// sampleLag sets the consumer-lag gauge every LagInterval.
func (s *Scheduler) sampleLag(ctx context.Context) {
	t := time.NewTicker(s.cfg.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, s.cfg.LagInterval)
		lags, err := s.adm.Lag(lctx, s.group)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug().Err(err).Msg("lag sample failed")
			}
			continue
		}
		if l, ok := lags[s.group]; ok && l.Error() == nil {
			var tot int64
			for t, tl := range l.Lag.TotalByTopic() {
				if t == s.names.Arrivals() || t == s.names.WorkerEvents() {
					tot += tl.Lag
				}
			}
			s.m.lag.Set(float64(tot))
		}
	}
}

// followWorkers reads the workers topic whole and keeps following it,
// handing each record to the loop. caught is closed once the records that
// existed at the start are all handed over (and applied).
func (s *Scheduler) followWorkers(ctx context.Context, caught chan struct{}) error {
	start := s.cfg.Clock() // every record written before it is read by caughtUp
	junk := newJunkWorkers()
	err := consumer.Follow(ctx, consumer.ReaderConfig{
		Kafka:  s.conn("-workers"),
		Topic:  s.names.Workers(),
		Logger: s.log,
	}, func(r *kgo.Record) {
		w, err := topics.DecodeWorker(r.Value)
		if err != nil {
			w = nil // only its offset counts
		}
		for _, j := range junk.read(r, err) {
			s.deadLetterWorker(ctx, j.r, j.err)
		}
		ts, part, off := r.Timestamp, r.Partition, r.Offset
		s.inbox.put(func() { s.st.workerRecord(w, ts, part, off) })
	}, func() {
		for _, j := range junk.caughtUp() {
			s.deadLetterWorker(ctx, j.r, j.err)
		}
		// Applied in order after every record before it.
		s.inbox.put(func() {
			s.st.covered(start)
			close(caught)
		})
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("scheduler: follow workers: %w", err)
	}
	return nil
}

// probeWorkers lists the end offsets of the workers topic every tenth of
// the heartbeat timeout (at most every 500ms) and hands them to the loop,
// which learns from them up to when it has read the topic (workerFeed.heard):
// the only way to tell silent workers from a topic it cannot read.
func (s *Scheduler) probeWorkers(ctx context.Context) {
	every := min(max(s.cfg.HeartbeatTimeout/10, 10*time.Millisecond), 500*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	topic := s.names.Workers()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := s.cfg.Clock() // before the listing: what was written before is below the ends
		lctx, cancel := context.WithTimeout(ctx, min(max(s.cfg.HeartbeatTimeout, time.Second), 10*time.Second))
		listed, err := s.adm.ListEndOffsets(lctx, topic)
		cancel()
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug().Err(err).Msg("workers topic end offsets not listed")
			}
			continue
		}
		ends := map[int32]int64{}
		listed.Each(func(o kadm.ListedOffset) {
			if o.Topic == topic {
				ends[o.Partition] = o.Offset
			}
		})
		if len(ends) == 0 {
			continue
		}
		s.inbox.put(func() { s.st.workersProbe(at, ends) })
	}
}

// rebuildEvent is one worker-events record re-read after an assignment.
type rebuildEvent struct {
	worker, function string
	idle             bool // an OK completion; false: an eviction
	at               time.Time
}

// rebuildResult is what rebuild read: the latest idle fact per (worker,
// function) in time order, and per partition the offset up to which the
// records were read (the consumer skips those).
type rebuildResult struct {
	events []rebuildEvent
	ends   map[int32]int64
	fnPart map[string]int32
	// adopt maps the ids of arrivals a previous owner handled (see
	// takeover) to the worker still running them, or to "" when their
	// completion is already in worker-events.
	adopt map[string]string
}

// rebuild re-reads worker-events partitions from now minus the keep-alive,
// keeping per (worker, function) only the latest fact: its last OK
// completion makes it idle (one instance), an eviction after it removes it.
// Completions since tk.from finish the takeover's assigned arrivals.
func (s *Scheduler) rebuild(ctx context.Context, parts []int32, tk takeover) rebuildResult {
	res := rebuildResult{ends: map[int32]int64{}, fnPart: map[string]int32{}, adopt: tk.assigned}
	if len(parts) == 0 {
		return res
	}
	keep := s.cfg.PolicyConfig.KeepAlive
	if keep == 0 {
		keep = policy.DefaultKeepAlive
	}
	var from time.Time
	if keep > 0 {
		from = s.cfg.Clock().Add(-keep)
	} // negative keep-alive: idle entries never expire; read everything
	type key struct{ w, f string }
	last := map[key]int{}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := consumer.ReadRange(rctx, consumer.ReaderConfig{
		Kafka:  s.conn("-rebuild"),
		Topic:  s.names.WorkerEvents(),
		Logger: s.log,
	}, parts, from, func(r *kgo.Record) error {
		if r.Offset+1 > res.ends[r.Partition] {
			res.ends[r.Partition] = r.Offset + 1
		}
		ev, err := topics.DecodeWorkerEvent(r.Value)
		if err != nil {
			return nil // the group consumer dead-letters it
		}
		var e rebuildEvent
		switch x := ev.(type) {
		case *topics.Completion:
			if !tk.from.IsZero() && !r.Timestamp.Before(tk.from) {
				res.adopt[x.ID] = "" // finished, whoever placed it
			}
			if !x.OK {
				return nil
			}
			e = rebuildEvent{worker: x.Worker, function: x.Function, idle: true, at: x.At}
		case *topics.Eviction:
			e = rebuildEvent{worker: x.Worker, function: x.Function, at: x.At}
		}
		if e.at.IsZero() {
			e.at = r.Timestamp
		}
		res.fnPart[e.function] = r.Partition
		k := key{e.worker, e.function}
		if i, ok := last[k]; ok {
			res.events[i] = e
		} else {
			last[k] = len(res.events)
			res.events = append(res.events, e)
		}
		return nil
	})
	if err != nil {
		s.log.Warn().Err(err).Ints32("partitions", parts).Msg("idle-state rebuild incomplete")
	}
	// Apply in time order: the policy's expiry list wants it.
	sortEvents(res.events)
	return res
}

// provisioner creates invoker.<worker> topics off the loop goroutine.
type provisioner struct {
	s    *Scheduler
	mu   sync.Mutex
	want []string
	sig  chan struct{}
}

func newProvisioner(s *Scheduler) *provisioner {
	return &provisioner{s: s, sig: make(chan struct{}, 1)}
}

// request asks for the topic of worker; it never blocks.
func (p *provisioner) request(worker string) {
	p.mu.Lock()
	p.want = append(p.want, worker)
	p.mu.Unlock()
	select {
	case p.sig <- struct{}{}:
	default:
	}
}

func (p *provisioner) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.sig:
		}
		p.mu.Lock()
		ws := p.want
		p.want = nil
		p.mu.Unlock()
		if len(ws) == 0 {
			continue
		}
		specs := make([]topics.Spec, len(ws))
		for i, w := range ws {
			specs[i] = p.s.cfg.Topics.InvokerSpec(w)
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := topics.Ensure(cctx, p.s.adm, specs...)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.s.log.Warn().Err(err).Strs("workers", ws).Msg("creating invoker topics failed; retrying")
			p.mu.Lock()
			p.want = append(ws, p.want...)
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			select {
			case p.sig <- struct{}{}:
			default:
			}
			continue
		}
		backoff = 100 * time.Millisecond
		p.s.inbox.put(func() {
			for _, w := range ws {
				p.s.st.provisioned(w)
			}
		})
	}
}
