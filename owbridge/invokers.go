package owbridge

// The sidecar role: invoker pings become worker heartbeats and
// assignments go to the invokers; the virtual invoker pings.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
)

// invoker is what the bridge knows of one real invoker.
type invoker struct {
	n          int
	id         string
	userMemory ByteSize
	enabled    bool
	last       time.Time     // last ping
	errs       [10]time.Time // when each of the last 10 slot-freeing acks was a system error; zero if it was not
	errPos     int
	running    bool       // its assignment runner was started
	pool       shadowPool // its containers as the bridge infers them
}

// systemErrors counts the system errors among the last 10 acks that are
// younger than memory: an invoker reported unhealthy gets no work, so no
// new acks, and its old errors must age out for it to be tried again.
func (i *invoker) systemErrors(now time.Time, memory time.Duration) int {
	n := 0
	for _, at := range i.errs {
		if !at.IsZero() && now.Sub(at) < memory {
			n++
		}
	}
	return n
}

// handlePings learns the invokers from their pings and starts serving
// each new one's assignments.
func (b *Bridge) handlePings(ctx context.Context, batch []*consumer.Delivery) {
	now := b.now()
	for _, d := range batch {
		p := d.Event.(*pingEvent).ping
		n := p.Name.Instance
		b.mu.Lock()
		inv := b.invokers[n]
		if inv == nil {
			inv = &invoker{n: n, id: WorkerID(n)}
			b.invokers[n] = inv
			b.log.Info().Str("worker", inv.id).Str("user_memory", p.Name.UserMemory.String()).Msg("invoker seen")
		}
		if !inv.last.IsZero() && !b.live(inv, now) {
			// Silent past the timeout: a restarted invoker starts with
			// an empty pool, and a lost one's busy containers never free.
			inv.pool = shadowPool{}
		}
		inv.userMemory, inv.enabled, inv.last = p.Name.UserMemory, p.Enabled(), now
		inv.pool.resize(int(p.Name.UserMemory.MB()))
		start := !inv.running && b.runCtx != nil
		if start {
			inv.running = true
		}
		rctx := b.runCtx
		b.mu.Unlock()
		if start {
			b.startRunner(rctx, n)
		}
		d.Done()
	}
}

// startRunner serves invoker n's assignment topic until ctx ends.
func (b *Bridge) startRunner(ctx context.Context, n int) {
	id := WorkerID(n)
	c, err := consumer.New(consumer.Config{
		Kafka: b.cfg.Kafka.WithClientID(b.cfg.ID + "-" + id), Group: b.names.InvokerGroup(id),
		Topics: []string{b.names.Invoker(id)}, Decode: decodeAssignment, DLQ: b.names.DLQ(), Producer: b.prod,
		Logger: b.log,
	}, &handler{handle: func(ctx context.Context, batch []*consumer.Delivery) { b.handleAssignments(ctx, n, batch) }, joined: func() {}})
	if err != nil {
		b.log.Error().Err(err).Str("worker", id).Msg("assignment consumer not started")
		return
	}
	b.addConsumer(c)
	b.runners.Go(func() {
		// The scheduler creates the assignment topic when it first hears
		// of the worker, and an invoker its own topic when it starts;
		// create both here too, so neither side waits for the other.
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if _, err := topics.Ensure(ectx, kadm.NewClient(b.prod.Client()), b.cfg.Topics.InvokerSpec(id),
			b.owSpec(b.cfg.invokerTopic(n))); err != nil && ctx.Err() == nil {
			b.log.Warn().Err(err).Str("worker", id).Msg("assignment topic not created")
		}
		cancel()
		if err := c.Run(ctx); err != nil {
			b.log.Error().Err(err).Str("worker", id).Msg("assignment consumer failed")
		}
	})
}

// handleAssignments hands each assignment's ActivationMessage, its bytes
// unchanged, to invoker n.
func (b *Bridge) handleAssignments(ctx context.Context, n int, batch []*consumer.Delivery) {
	wid := WorkerID(n)
	for _, d := range batch {
		a := d.Event.(*topics.Assignment)
		if a.Worker != wid {
			b.log.Warn().Str("id", a.ID).Str("assigned_to", a.Worker).Str("worker", wid).Msg("assignment for another worker dropped")
			d.Done()
			continue
		}
		id := ActivationIDOf(a.ID)
		now := b.now()
		skip, known := false, false
		b.book.with(id, func(e *entry) {
			if e == nil {
				return
			}
			known = true
			if e.worker != "" || e.answered {
				skip = true
				return
			}
			e.worker, e.scheduler, e.assignedAt = wid, a.Scheduler, now
		})
		if !known {
			// Taken before a restart of the bridge: the payload has all
			// the book needs.
			m, err := DecodeActivation(a.Payload)
			if err != nil {
				b.log.Warn().Err(err).Str("id", a.ID).Msg("assignment payload is no activation message; dropped")
				d.Done()
				continue
			}
			e := newEntry(m, now, a.Deadline)
			if a.Deadline.IsZero() {
				e.deadline = now.Add(b.cfg.forcedAckAfter(b.cfg.DefaultTimeout))
			}
			if _, _, handled := b.book.add(e); handled {
				skip = true
			} else {
				b.book.with(id, func(cur *entry) { cur.worker, cur.scheduler, cur.assignedAt = wid, a.Scheduler, now })
			}
		}
		if skip {
			b.cnt.duplicates.Add(1)
			d.Done()
			continue
		}
		b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.invokerTopic(n), Value: a.Payload}, func(err error) {
			if err != nil {
				b.cnt.publishErrors.Add(1)
				b.log.Warn().Err(err).Str("id", id).Str("worker", wid).Msg("activation not handed to the invoker; the scheduler's timeout answers it")
			} else {
				b.cnt.assigned.Add(1)
			}
			d.Done()
		})
		mem, _ := b.limitsOf(a.Function)
		b.evicted(ctx, n, b.poolOp(n, func(p *shadowPool) []string { return p.assign(a.Function, mem, now) }), now)
	}
}

// poolOp runs op on invoker n's shadow pool and returns the functions it
// evicted; none when evictions are not inferred or n is unknown.
func (b *Bridge) poolOp(n int, op func(*shadowPool) []string) []string {
	if b.cfg.NoInferredEvictions {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	inv := b.invokers[n]
	if inv == nil {
		return nil
	}
	return op(&inv.pool)
}

// evicted tells pullsched that invoker n removed an idle container of each
// of fns.
func (b *Bridge) evicted(ctx context.Context, n int, fns []string, now time.Time) {
	for _, fn := range fns {
		ev := &topics.Eviction{Function: fn, Worker: WorkerID(n), At: now}
		b.prod.PublishAsync(ctx, b.names.WorkerEvents(), ev, func(err error) {
			if err != nil {
				b.cnt.publishErrors.Add(1)
				b.log.Warn().Err(err).Str("fn", fn).Str("worker", ev.Worker).Msg("inferred eviction not published")
				return
			}
			b.cnt.evictions.Add(1)
		})
	}
}

// tick pings as the virtual invoker, heartbeats the live invokers and
// sweeps the book.
func (b *Bridge) tick(ctx context.Context) {
	ping := time.NewTicker(b.cfg.PingInterval)
	defer ping.Stop()
	hb := time.NewTicker(b.cfg.HeartbeatInterval)
	defer hb.Stop()
	b.ping(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			b.ping(ctx)
		case <-hb.C:
			now := b.now()
			b.heartbeat(ctx, now, false)
			b.book.sweep(now, b.cfg.DedupeWindow, b.cfg.BookGrace)
		}
	}
}

// ping writes the virtual invoker's ping to the controllers' health topic.
func (b *Bridge) ping(ctx context.Context) {
	t := true
	v, err := (&PingMessage{Name: b.facade(), IsEnabled: &t}).Encode()
	if err != nil {
		return
	}
	b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.controllerHealth(), Value: v}, func(err error) {
		if err != nil && ctx.Err() == nil {
			b.cnt.publishErrors.Add(1)
			b.log.Warn().Err(err).Msg("facade ping not written")
		}
	})
}

// capacity is the in-flight limit of an invoker of userMemory.
func (b *Bridge) capacity(userMemory ByteSize) int {
	return max(int(userMemory.MB()/int64(b.cfg.SlotMB)), 1)
}

// heartbeat writes the worker record of every invoker heard within
// InvokerTimeout (draining ones too); final marks them all draining.
func (b *Bridge) heartbeat(ctx context.Context, now time.Time, final bool) {
	infl := b.book.inflight()
	var recs []*topics.Worker
	b.mu.Lock()
	for _, inv := range b.invokers {
		if !final && !b.live(inv, now) {
			continue
		}
		state := topics.WorkerActive
		if final || !inv.enabled {
			state = topics.WorkerDraining
		}
		total := 0
		for _, k := range infl[inv.id] {
			total += k
		}
		recs = append(recs, &topics.Worker{
			ID: inv.id, State: state, Source: topics.SourceOpenWhisk, Capacity: b.capacity(inv.userMemory),
			InFlight: total, InFlightBy: infl[inv.id], Healthy: inv.systemErrors(now, b.cfg.ErrorMemory) <= b.cfg.UnhealthyErrors,
			Bridge: b.cfg.ID, At: now,
		})
	}
	b.mu.Unlock()
	for _, r := range recs {
		if final {
			pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := b.prod.Publish(pctx, b.names.Workers(), r); err != nil {
				b.log.Warn().Err(err).Str("worker", r.ID).Msg("final worker record not written")
			}
			cancel()
			continue
		}
		b.prod.PublishAsync(ctx, b.names.Workers(), r, func(err error) {
			if err != nil && ctx.Err() == nil {
				b.cnt.publishErrors.Add(1)
				b.log.Warn().Err(err).Str("worker", r.ID).Msg("heartbeat not written")
			}
		})
	}
}

// drain marks every invoker draining, so the schedulers stop placing on
// invokers nobody will hand work to.
func (b *Bridge) drain() { b.heartbeat(context.Background(), b.now(), true) }
