package owbridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

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

func (*activationEvent) Validate() error { return nil }

type ackEvent struct {
	ack        *Ack
	raw        []byte
	controller string
}

func (*ackEvent) Kind() topics.Kind { return kindAck }

func (*ackEvent) Validate() error { return nil }

type pingEvent struct{ ping *PingMessage }

func (*pingEvent) Kind() topics.Kind { return kindPing }

func (*pingEvent) Validate() error { return nil }

// Counts are the bridge's counters since it started.
type Counts struct {
	Arrivals       int64 // activations published as arrivals
	Assigned       int64 // assignments handed to invokers
	Duplicates     int64 // re-delivered assignments or activations not handed over again
	Forwarded      int64 // invoker acks forwarded to the controllers
	Completions    int64 // pullsched completions published
	Synthetic      int64 // synthetic acks written for activations pullsched answered
	HealthTests    int64 // health-test activations sent straight to an invoker
	Evictions      int64 // evictions inferred and published
	UnknownAcks    int64 // slot-freeing acks of activations the bridge did not know
	PublishErrors  int64 // records that could not be written
	Unanswerable   int64 // scheduler answers of activations the bridge no longer knew
	NoHealthyForHT int64 // health tests dropped: no healthy invoker
}

type counters struct {
	arrivals, assigned, duplicates, forwarded, completions, synthetic, healthTests,
	unknownAcks, publishErrors, unanswerable, noHealthy, evictions atomic.Int64
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

	mu        sync.Mutex
	invokers  map[int]*invoker
	consumers []*consumer.Consumer // every consumer, runners' too: metrics and /readyz
	limits    map[string]Limits    // learned per function key
	runners   sync.WaitGroup
	runCtx    context.Context
}

// New validates cfg and prepares a bridge; it binds the HTTP listener but
// makes no connection.
func New(cfg Config) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
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
		srv, err := httpserve.New(httpserve.Config{Addr: cfg.Listen, Logger: b.log})
		if err != nil {
			return nil, fmt.Errorf("owbridge: %w", err)
		}
		b.srv = srv
		b.srv.Mux().HandleFunc("GET /counts", func(w http.ResponseWriter, _ *http.Request) {
			httpserve.WriteJSON(w, http.StatusOK, b.Counts())
		})
		b.srv.SetReadyCheck(b.progress)
		if err := b.registerMetrics(b.srv.Registry()); err != nil {
			_ = b.srv.Close()
			return nil, fmt.Errorf("owbridge: metrics: %w", err)
		}
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
		Unanswerable: c.unanswerable.Load(), NoHealthyForHT: c.noHealthy.Load(), Evictions: c.evictions.Load(),
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
		b.addConsumer(c)
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

func (h *handler) Assigned(context.Context, map[string][]int32) { h.joined() }

func (h *handler) Revoked(context.Context, map[string][]int32) {}

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
