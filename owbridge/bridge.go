package owbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/httpserve"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// ErrAlreadyRun is returned by Run when called a second time.
var ErrAlreadyRun = errors.New("owbridge: Run called twice")

// Kinds of the OpenWhisk records the bridge's consumers hand over; they
// never travel on pullsched's topics.
const (
	kindActivation topics.Kind = "ow-activation"
	kindAck        topics.Kind = "ow-ack"
	kindPing       topics.Kind = "ow-ping"
)

type activationEvent struct {
	msg *ActivationMessage
	raw []byte
}

func (*activationEvent) Kind() topics.Kind { return kindActivation }
func (*activationEvent) Validate() error   { return nil }

type ackEvent struct {
	ack        *Ack
	raw        []byte
	controller string
}

func (*ackEvent) Kind() topics.Kind { return kindAck }
func (*ackEvent) Validate() error   { return nil }

type pingEvent struct{ ping *PingMessage }

func (*pingEvent) Kind() topics.Kind { return kindPing }
func (*pingEvent) Validate() error   { return nil }

// invoker is what the bridge knows of one real invoker.
type invoker struct {
	n          int
	id         string
	userMemory ByteSize
	enabled    bool
	last       time.Time // last ping
	errs       [10]bool  // system error of the last 10 slot-freeing acks
	errPos     int
	running    bool // its assignment runner was started
}

func (i *invoker) systemErrors() int {
	n := 0
	for _, e := range i.errs {
		if e {
			n++
		}
	}
	return n
}

// Counts are the bridge's counters since it started.
type Counts struct {
	Arrivals       int64 // activations published as arrivals
	Assigned       int64 // assignments handed to invokers
	Duplicates     int64 // re-delivered assignments or activations not handed over again
	Forwarded      int64 // invoker acks forwarded to the controllers
	Completions    int64 // pullsched completions published
	Synthetic      int64 // synthetic acks written for activations pullsched answered
	HealthTests    int64 // health-test activations sent straight to an invoker
	UnknownAcks    int64 // slot-freeing acks of activations the bridge did not know
	PublishErrors  int64 // records that could not be written
	Unanswerable   int64 // scheduler answers of activations the bridge no longer knew
	NoHealthyForHT int64 // health tests dropped: no healthy invoker
}

type counters struct {
	arrivals, assigned, duplicates, forwarded, completions, synthetic, healthTests,
	unknownAcks, publishErrors, unanswerable, noHealthy atomic.Int64
}

// Bridge is the OpenWhisk bridge. Create it with New and run it with Run.
type Bridge struct {
	cfg   Config
	log   zerolog.Logger
	names topics.Names
	srv   *httpserve.Server
	book  *book
	prod  *producer.Producer
	cnt   counters
	now   func() time.Time

	started   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once

	mu       sync.Mutex
	invokers map[int]*invoker
	limits   map[string]Limits // learned per function key
	runners  sync.WaitGroup
	runCtx   context.Context
}

// New validates cfg and prepares a bridge; it binds the HTTP listener but
// makes no connection.
func New(cfg Config) (*Bridge, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Bridge{
		cfg:      cfg,
		log:      cfg.Logger.With().Str("part", "openwhisk").Str("bridge", cfg.ID).Logger(),
		names:    cfg.Topics.Names(),
		book:     newBook(),
		now:      time.Now,
		ready:    make(chan struct{}),
		invokers: map[int]*invoker{},
		limits:   map[string]Limits{},
	}
	if cfg.Listen != "" {
		b.srv, err = httpserve.New(httpserve.Config{Addr: cfg.Listen, Logger: b.log})
		if err != nil {
			return nil, fmt.Errorf("owbridge: %w", err)
		}
		b.srv.Mux().HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
			httpserve.WriteJSON(w, 200, b.Counts())
		})
	}
	return b, nil
}

// Addr is the bound HTTP address, or "".
func (b *Bridge) Addr() string {
	if b.srv == nil {
		return ""
	}
	return b.srv.Addr()
}

// Ready is closed once every consumer of the bridge has joined its group
// and the virtual invoker pinged once.
func (b *Bridge) Ready() <-chan struct{} { return b.ready }

// Counts returns the counters.
func (b *Bridge) Counts() Counts {
	c := &b.cnt
	return Counts{
		Arrivals: c.arrivals.Load(), Assigned: c.assigned.Load(), Duplicates: c.duplicates.Load(),
		Forwarded: c.forwarded.Load(), Completions: c.completions.Load(), Synthetic: c.synthetic.Load(),
		HealthTests: c.healthTests.Load(), UnknownAcks: c.unknownAcks.Load(), PublishErrors: c.publishErrors.Load(),
		Unanswerable: c.unanswerable.Load(), NoHealthyForHT: c.noHealthy.Load(),
	}
}

// facade is the virtual invoker's instance id, in the 2.0 shape (a 1.0
// controller ignores the 2.0 members; a 2.0 controller requires them).
func (b *Bridge) facade() InvokerInstanceID {
	return InvokerInstanceID{Instance: b.cfg.FacadeInstance, UserMemory: b.cfg.FacadeUserMemory,
		InstanceType: InstanceTypeInvoker, Tags: []string{}, DedicatedNamespaces: []string{}}
}

// Run connects, creates the topics the bridge needs, and serves until ctx
// ends; then it stops taking activations, marks the invokers draining,
// commits, and flushes. It returns nil on a clean stop.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	prod, err := producer.New(producer.Config{Kafka: b.cfg.Kafka.WithClientID(b.cfg.ID), Logger: b.log})
	if err != nil {
		b.closeSrv()
		return fmt.Errorf("owbridge: %w", err)
	}
	b.prod = prod
	defer prod.Close(10 * time.Second)
	if err := b.ensureTopics(ctx); err != nil {
		b.closeSrv()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b.mu.Lock()
	b.runCtx = rctx
	b.mu.Unlock()

	type part struct {
		name string
		c    *consumer.Consumer
	}
	var parts []part
	joined := make(chan string, 8)
	mk := func(name, group string, tops []string, atEnd bool, decode func(string, []byte) (topics.Event, error),
		handle func(context.Context, []*consumer.Delivery)) error {
		c, err := consumer.New(consumer.Config{
			Kafka: b.cfg.Kafka.WithClientID(b.cfg.ID + "-" + name), Group: group, Topics: tops,
			Decode: decode, DLQ: b.names.DLQ(), Producer: prod, StartAtEnd: atEnd, Logger: b.log,
		}, &handler{handle: handle, joined: func() {
			select {
			case joined <- name:
			default:
			}
		}})
		if err != nil {
			return fmt.Errorf("owbridge: %s consumer: %w", name, err)
		}
		parts = append(parts, part{name, c})
		return nil
	}
	acks := make([]string, len(b.cfg.Controllers))
	for i, ctl := range b.cfg.Controllers {
		acks[i] = b.cfg.acksTopic(ctl)
	}
	errs := []error{
		mk("health", b.cfg.Group+".health", []string{b.cfg.invokerHealth()}, true, decodePing, b.handlePings),
		mk("acks", b.cfg.Group+".acks", acks, false, b.decodeAck, b.handleAcks),
		mk("results", b.cfg.Group+".results", []string{b.names.Results(b.cfg.ID)}, false, decodeResult, b.handleResults),
		mk("activations", b.cfg.Group+".activations", []string{b.cfg.facadeTopic()}, false, decodeActivation, b.handleActivations),
	}
	if err := errors.Join(errs...); err != nil {
		b.closeSrv()
		return err
	}

	httpCtx, httpCancel := context.WithCancel(context.Background())
	defer httpCancel()
	var httpDone chan error // nil without a server: never ready
	if b.srv != nil {
		httpDone = make(chan error, 1)
		go func() { httpDone <- b.srv.Serve(httpCtx) }()
	}

	var wg sync.WaitGroup
	consErr := make(chan error, len(parts))
	// The activations consumer stops first at shutdown, so nothing new is
	// taken while the others drain: it gets its own context.
	actCtx, actCancel := context.WithCancel(rctx)
	defer actCancel()
	for _, p := range parts {
		cctx := rctx
		if p.name == "activations" {
			cctx = actCtx
		}
		wg.Go(func() {
			if err := p.c.Run(cctx); err != nil {
				consErr <- fmt.Errorf("owbridge: %s: %w", p.name, err)
			}
		})
	}
	wg.Go(func() { b.tick(rctx) })

	go func() {
		seen := map[string]bool{}
		for len(seen) < len(parts) {
			select {
			case n := <-joined:
				seen[n] = true
			case <-rctx.Done():
				return
			}
		}
		b.readyOnce.Do(func() {
			close(b.ready)
			if b.srv != nil {
				b.srv.SetReady(true)
			}
			b.log.Info().Str("facade_topic", b.cfg.facadeTopic()).Strs("controllers", b.cfg.Controllers).
				Msg("openwhisk bridge ready")
		})
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-consErr:
	case runErr = <-httpDone:
		if runErr != nil {
			runErr = fmt.Errorf("owbridge: http: %w", runErr)
		}
	}
	if b.srv != nil {
		b.srv.SetReady(false)
	}
	actCancel()
	b.drain()
	cancel()
	wg.Wait()
	b.runners.Wait()
	httpCancel()
	if b.srv != nil {
		if err := <-httpDone; err != nil && runErr == nil {
			runErr = fmt.Errorf("owbridge: http: %w", err)
		}
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := prod.Flush(fctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("owbridge: flush: %w", err)
	}
	b.log.Info().Err(runErr).Msg("openwhisk bridge stopped")
	return runErr
}

func (b *Bridge) closeSrv() {
	if b.srv != nil {
		_ = b.srv.Close()
	}
}

// ensureTopics creates pullsched's topics, the bridge's results topic and
// the OpenWhisk topics nobody else creates once the controllers have a
// prefix (the virtual invoker's, the invokers' acks and health topics).
func (b *Bridge) ensureTopics(ctx context.Context) error {
	adm := kadm.NewClient(b.prod.Client())
	if _, err := topics.EnsureAll(ctx, adm, b.cfg.Topics); err != nil {
		return fmt.Errorf("owbridge: topics: %w", err)
	}
	ow := b.owSpec
	specs := []topics.Spec{b.cfg.Topics.ResultsSpec(b.cfg.ID), ow(b.cfg.facadeTopic()), ow(b.cfg.invokerHealth()),
		ow(b.cfg.controllerHealth())}
	for _, ctl := range b.cfg.Controllers {
		specs = append(specs, ow(b.cfg.acksTopic(ctl)), ow(b.cfg.controllerAcks(ctl)))
	}
	if _, err := topics.Ensure(ctx, adm, specs...); err != nil {
		return fmt.Errorf("owbridge: topics: %w", err)
	}
	return nil
}

// owSpec is how the bridge creates an OpenWhisk topic that does not
// exist yet: one partition, records up to topics.MaxMessageBytes.
func (b *Bridge) owSpec(name string) topics.Spec {
	return topics.Spec{Name: name, Partitions: 1, Replication: b.cfg.Topics.WithDefaults().Replication,
		Configs: map[string]string{"max.message.bytes": strconv.Itoa(topics.MaxMessageBytes)}}
}

// handler adapts functions to consumer.Handler.
type handler struct {
	handle func(context.Context, []*consumer.Delivery)
	joined func()
}

func (h *handler) Handle(ctx context.Context, batch []*consumer.Delivery) { h.handle(ctx, batch) }
func (h *handler) Assigned(context.Context, map[string][]int32)           { h.joined() }
func (h *handler) Revoked(context.Context, map[string][]int32)            {}

func decodeActivation(_ string, v []byte) (topics.Event, error) {
	m, err := DecodeActivation(v)
	if err != nil {
		return nil, err
	}
	return &activationEvent{msg: m, raw: v}, nil
}

func (b *Bridge) decodeAck(topic string, v []byte) (topics.Event, error) {
	a, err := DecodeAck(v)
	if err != nil {
		return nil, err
	}
	for _, ctl := range b.cfg.Controllers {
		if b.cfg.acksTopic(ctl) == topic {
			return &ackEvent{ack: a, raw: v, controller: ctl}, nil
		}
	}
	return nil, fmt.Errorf("owbridge: ack on unexpected topic %s", topic)
}

func decodePing(_ string, v []byte) (topics.Event, error) {
	p, err := DecodePing(v)
	if err != nil {
		return nil, err
	}
	return &pingEvent{ping: p}, nil
}

func decodeResult(_ string, v []byte) (topics.Event, error) { return topics.DecodeResult(v) }

func decodeAssignment(_ string, v []byte) (topics.Event, error) { return topics.DecodeAssignment(v) }

// assignmentOverhead is room left in a record for what an assignment adds
// to its arrival (worker, times, scheduler id): an arrival that fills a
// record would make an assignment the scheduler cannot write.
const assignmentOverhead = 1024

// limitsOf returns what is known of fn's limits, defaults filled in.
func (b *Bridge) limitsOf(fn string) (memMB int, timeout time.Duration) {
	b.mu.Lock()
	l := b.limits[fn]
	b.mu.Unlock()
	memMB, timeout = b.cfg.DefaultMemoryMB, b.cfg.DefaultTimeout
	if l.Memory > 0 {
		memMB = l.Memory
	}
	if l.Timeout > 0 {
		timeout = time.Duration(l.Timeout) * time.Millisecond
	}
	return memMB, timeout
}

func (b *Bridge) learn(fn string, a *WhiskActivation) {
	if a == nil || fn == "" {
		return
	}
	if l, ok := a.Limits(); ok && (l.Memory > 0 || l.Timeout > 0) {
		b.mu.Lock()
		b.limits[fn] = l
		b.mu.Unlock()
	}
}

func newEntry(m *ActivationMessage, now, deadline time.Time) *entry {
	return &entry{
		id: m.ActivationID, fn: FunctionKey(m.User.Namespace.Name, m.Action), controller: m.RootControllerIndex.AsString,
		blocking: m.Blocking, transid: m.TransID, namespace: m.User.Namespace.Name, subject: m.User.Subject,
		action: m.Action, arrived: now, deadline: deadline, health: isHealthTest(m.Action),
	}
}

// handleActivations turns the controllers' activations into arrivals.
func (b *Bridge) handleActivations(ctx context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		ev := d.Event.(*activationEvent)
		m := ev.msg
		now := b.now()
		if isHealthTest(m.Action) {
			b.healthTest(ctx, d, m, ev.raw, now)
			continue
		}
		fn := FunctionKey(m.User.Namespace.Name, m.Action)
		mem, limit := b.limitsOf(fn)
		deadline := now.Add(b.cfg.forcedAckAfter(limit) - b.cfg.AnswerMargin)
		e, fresh := b.book.add(newEntry(m, now, deadline))
		if !fresh && (e.answered || e.worker != "") {
			b.cnt.duplicates.Add(1)
			d.Done()
			continue
		}
		log := b.log.With().Str("id", m.ActivationID).Str("fn", fn).Logger()
		arr := &topics.Arrival{ID: EventID(m.ActivationID), Function: fn, Payload: ev.raw, Reply: b.cfg.ID,
			MemoryMB: mem, Arrived: e.arrived, Deadline: e.deadline}
		rec, err := producer.Record(b.names.Arrivals(), arr)
		if err == nil && producer.BatchBytes(rec)+assignmentOverhead > b.prod.MaxRecordBytes() {
			err = fmt.Errorf("the activation message of %d bytes is more than a pullsched assignment can carry (%d bytes a record)",
				len(ev.raw), b.prod.MaxRecordBytes())
		}
		if err != nil {
			log.Warn().Err(err).Msg("activation refused")
			b.synthetic(ctx, e, "pullsched cannot take this activation: "+err.Error(), d.Done)
			continue
		}
		b.prod.ProduceAsync(ctx, rec, func(err error) {
			if err != nil {
				b.cnt.publishErrors.Add(1)
				log.Warn().Err(err).Msg("arrival not published")
				if ctx.Err() == nil {
					b.synthetic(ctx, e, "pullsched is unavailable: "+err.Error(), d.Done)
				}
				return // shutting down: the next owner reads it again
			}
			b.cnt.arrivals.Add(1)
			d.Done()
		})
	}
}

// healthTest sends a controller's health-test activation straight to a
// healthy invoker: it tests the facade, which is healthy while any invoker
// is.
func (b *Bridge) healthTest(ctx context.Context, d *consumer.Delivery, m *ActivationMessage, raw []byte, now time.Time) {
	e, fresh := b.book.add(newEntry(m, now, now.Add(b.cfg.forcedAckAfter(b.cfg.DefaultTimeout))))
	if !fresh {
		b.cnt.duplicates.Add(1)
		d.Done()
		return
	}
	inv, ok := b.healthyInvoker(now)
	if !ok {
		b.cnt.noHealthy.Add(1)
		b.log.Warn().Str("id", m.ActivationID).Msg("health test dropped: no healthy invoker")
		d.Done()
		return
	}
	b.book.with(m.ActivationID, func(e *entry) { e.worker, e.assignedAt = WorkerID(inv), now })
	_ = e
	b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.invokerTopic(inv), Value: raw}, func(err error) {
		if err != nil {
			b.cnt.publishErrors.Add(1)
			b.log.Warn().Err(err).Str("id", m.ActivationID).Msg("health test not sent")
		} else {
			b.cnt.healthTests.Add(1)
		}
		d.Done()
	})
}

// healthyInvoker returns the live, enabled, healthy invoker with the fewest
// activations in flight.
func (b *Bridge) healthyInvoker(now time.Time) (int, bool) {
	infl := b.book.inflight()
	b.mu.Lock()
	defer b.mu.Unlock()
	best, bestLoad := -1, 0
	for n, inv := range b.invokers {
		if !b.live(inv, now) || !inv.enabled || inv.systemErrors() > b.cfg.UnhealthyErrors {
			continue
		}
		load := 0
		for _, k := range infl[inv.id] {
			load += k
		}
		if best < 0 || load < bestLoad || load == bestLoad && n < best {
			best, bestLoad = n, load
		}
	}
	return best, best >= 0
}

func (b *Bridge) live(inv *invoker, now time.Time) bool {
	return now.Sub(inv.last) <= b.cfg.InvokerTimeout
}

// synthetic answers e's controller in OpenWhisk's own shape — a combined
// ack shrunk to the id for a non-blocking activation, one carrying a
// whisk-error activation for a blocking one — unless e was answered
// already; done is called once the ack is written (or failed).
func (b *Bridge) synthetic(ctx context.Context, e *entry, msg string, done func()) {
	send := false
	var snap entry
	b.book.with(e.id, func(cur *entry) {
		if cur != nil && !cur.answered {
			cur.answered = true
			send, snap = true, *cur
		}
	})
	if !send {
		done()
		return
	}
	ack := b.syntheticAck(&snap, msg, b.now())
	v, err := ack.Encode()
	if err != nil { // cannot happen for the acks built here
		b.log.Error().Err(err).Str("id", e.id).Msg("synthetic ack not encoded")
		done()
		return
	}
	b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.controllerAcks(snap.controller), Value: v}, func(err error) {
		if err != nil {
			b.cnt.publishErrors.Add(1)
			b.log.Warn().Err(err).Str("id", snap.id).Msg("synthetic ack not written")
		} else {
			b.cnt.synthetic.Add(1)
		}
		done()
	})
}

// syntheticAck builds the ack that answers e with a whisk error.
func (b *Bridge) syntheticAck(e *entry, msg string, now time.Time) *Ack {
	f := false
	inst := b.facade()
	a := &Ack{Kind: AckCombined, TransID: e.transid, ActivationID: e.id, IsSystemError: &f, Instance: &inst}
	if !e.blocking {
		a.ResponseID = e.id
		return a
	}
	result, _ := json.Marshal(map[string]string{"error": msg})
	path, _ := json.Marshal(e.action.String())
	version := e.action.Version
	if version == "" {
		version = "0.0.1"
	}
	start, end := e.arrived.UnixMilli(), now.UnixMilli()
	dur := end - start
	a.Activation = &WhiskActivation{
		Namespace: e.namespace, Name: e.action.Name, Subject: e.subject, ActivationID: e.id,
		Start: start, End: end, Response: ActivationResponse{StatusCode: StatusWhiskError, Result: result},
		Logs: json.RawMessage("[]"), Version: version,
		Annotations: []Annotation{{Key: "path", Value: path}}, Duration: &dur,
	}
	return a
}

// handleResults answers, with a synthetic ack, activations the scheduler
// rejected or timed out before assigning them. An assigned activation is
// answered by its invoker (or, if the invoker died, by the controller's
// forced ack).
func (b *Bridge) handleResults(ctx context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		r := d.Event.(*topics.Result)
		id := ActivationIDOf(r.ID)
		var e *entry
		known := false
		b.book.with(id, func(cur *entry) {
			known = cur != nil
			if cur != nil && !cur.answered && cur.worker == "" && r.Worker == "" {
				e = cur
			}
		})
		if !known {
			b.cnt.unanswerable.Add(1)
			b.log.Warn().Str("id", id).Str("reason", r.Reason).Msg("scheduler answered an activation this bridge does not know; the controller's forced ack will answer it")
		}
		if e == nil {
			d.Done()
			continue
		}
		msg := fmt.Sprintf("pullsched could not run the activation (%s, %d)", r.Reason, r.Status)
		if r.Error != "" {
			msg += ": " + r.Error
		}
		b.synthetic(ctx, e, msg, d.Done)
	}
}

// handleAcks forwards every invoker ack to its controller with the
// facade's instance and no system error, and turns slot-freeing acks into
// pullsched completions.
func (b *Bridge) handleAcks(ctx context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		ev := d.Event.(*ackEvent)
		a := ev.ack
		now := b.now()
		fwd, err := RewriteAck(ev.raw, a.InstanceField, b.facade(), false)
		if err != nil { // DecodeAck read it, so it is an object
			b.log.Error().Err(err).Str("id", a.ActivationID).Msg("ack not rewritten")
			d.Done()
			continue
		}
		if a.SlotFree() && a.Instance != nil {
			b.noteAck(a.Instance.Instance, a.SystemError())
		}
		comp := b.completionFor(a, now)
		pending := atomic.Int32{}
		pending.Store(1)
		if comp != nil {
			pending.Store(2)
		}
		finish := func() {
			if pending.Add(-1) == 0 {
				d.Done()
			}
		}
		b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.controllerAcks(ev.controller), Value: fwd}, func(err error) {
			if err != nil {
				b.cnt.publishErrors.Add(1)
				b.log.Warn().Err(err).Str("id", a.ActivationID).Msg("ack not forwarded")
			} else {
				b.cnt.forwarded.Add(1)
			}
			finish()
		})
		if comp != nil {
			b.prod.PublishAsync(ctx, b.names.WorkerEvents(), comp, func(err error) {
				if err != nil {
					b.cnt.publishErrors.Add(1)
					b.log.Warn().Err(err).Str("id", a.ActivationID).Msg("completion not published")
				} else {
					b.cnt.completions.Add(1)
				}
				finish()
			})
		}
	}
}

// completionFor books ack a and returns the pullsched completion it
// makes, or nil (a result-only ack, a health test, a duplicate, or an
// activation the bridge cannot name).
func (b *Bridge) completionFor(a *Ack, now time.Time) *topics.Completion {
	var comp *topics.Completion
	var fn string
	known := false
	b.book.with(a.ActivationID, func(e *entry) {
		if e == nil {
			return
		}
		known, fn = true, e.fn
		status, start := e.status, e.start
		if a.Activation != nil {
			status = a.Activation.Response.StatusCode
			start = startOf(a.Activation)
		}
		if !a.SlotFree() {
			e.status, e.start = status, start
			return
		}
		if e.health || e.answered && e.worker == "" {
			e.answered = true
			return
		}
		if e.answered { // a re-delivered ack: completed already
			b.cnt.duplicates.Add(1)
			return
		}
		e.answered = true
		worker := e.worker
		if worker == "" && a.Instance != nil {
			worker = WorkerID(a.Instance.Instance)
		}
		comp = b.completion(a, e.fn, worker, status, start, e.assignedAt, now)
	})
	if !known && a.SlotFree() {
		// Not in the book (the bridge restarted): a record names its
		// function; a bare completion does not.
		if act := a.Activation; act != nil && a.Instance != nil {
			if fa, ok := actionOf(act); ok {
				fn = FunctionKey(act.Namespace, fa)
				comp = b.completion(a, fn, WorkerID(a.Instance.Instance), act.Response.StatusCode, startOf(act), time.Time{}, now)
			}
		}
		if comp == nil {
			b.cnt.unknownAcks.Add(1)
		}
	}
	if a.Activation != nil && fn == "" {
		if fa, ok := actionOf(a.Activation); ok {
			fn = FunctionKey(a.Activation.Namespace, fa)
		}
	}
	b.learn(fn, a.Activation)
	return comp
}

func (b *Bridge) completion(a *Ack, fn, worker string, status int, start topics.Start, assigned, now time.Time) *topics.Completion {
	sysErr := a.SystemError()
	ok := !sysErr && (status == StatusSuccess || status == StatusApplicationError || status < 0)
	var dur float64
	switch {
	case a.Activation != nil && a.Activation.Duration != nil:
		dur = float64(*a.Activation.Duration)
	case a.Activation != nil && a.Activation.End >= a.Activation.Start:
		dur = float64(a.Activation.End - a.Activation.Start)
	case !assigned.IsZero():
		dur = float64(now.Sub(assigned)) / float64(time.Millisecond)
	}
	c := &topics.Completion{ID: EventID(a.ActivationID), Function: fn, Worker: worker, OK: ok, Start: start,
		DurationMs: max(dur, 0), At: now}
	if !ok {
		c.Error = fmt.Sprintf("openwhisk status %d, system error %t", status, sysErr)
	}
	if c.Validate() != nil {
		return nil
	}
	return c
}

// startOf reads cold or warm from a record's initTime annotation: present
// on a cold start only.
func startOf(a *WhiskActivation) topics.Start {
	if a == nil {
		return topics.StartUnknown
	}
	if a.InitTimeMs() >= 0 {
		return topics.StartCold
	}
	return topics.StartWarm
}

// actionOf names a record's action from its path annotation
// ("namespace/[package/]name") and version.
func actionOf(a *WhiskActivation) (FullyQualifiedEntityName, bool) {
	var path string
	if v := a.Annotation("path"); v == nil || json.Unmarshal(v, &path) != nil {
		return FullyQualifiedEntityName{}, false
	}
	var f FullyQualifiedEntityName
	raw, _ := json.Marshal(path)
	if f.UnmarshalJSON(raw) != nil {
		return FullyQualifiedEntityName{}, false
	}
	f.Version = a.Version
	return f, true
}

// noteAck records whether an invoker's slot-freeing ack was a system error.
func (b *Bridge) noteAck(n int, sysErr bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if inv := b.invokers[n]; inv != nil {
		inv.errs[inv.errPos] = sysErr
		inv.errPos = (inv.errPos + 1) % len(inv.errs)
	}
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
		inv.userMemory, inv.enabled, inv.last = p.Name.UserMemory, p.Enabled(), now
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
		Kafka: b.cfg.Kafka.WithClientID(b.cfg.ID + "-" + id), Group: b.names.Prefix + topics.InvokerBase + id,
		Topics: []string{b.names.Invoker(id)}, Decode: decodeAssignment, DLQ: b.names.DLQ(), Producer: b.prod,
		Logger: b.log,
	}, &handler{handle: func(ctx context.Context, batch []*consumer.Delivery) { b.handleAssignments(ctx, n, batch) }, joined: func() {}})
	if err != nil {
		b.log.Error().Err(err).Str("worker", id).Msg("assignment consumer not started")
		return
	}
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
			e, fresh := b.book.add(e)
			b.book.with(id, func(cur *entry) {
				if !fresh && (cur.worker != "" || cur.answered) {
					skip = true
					return
				}
				cur.worker, cur.scheduler, cur.assignedAt = wid, a.Scheduler, now
			})
			_ = e
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
			b.book.sweep(now, b.cfg.BookGrace)
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
			InFlight: total, InFlightBy: infl[inv.id], Healthy: inv.systemErrors() <= b.cfg.UnhealthyErrors,
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
