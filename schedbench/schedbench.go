package schedbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/scheduler"
	"github.com/pullsched/pullsched/topics"
)

// Config configures Run: one scheduler replica, fed arrivals through
// the broker, with no-op bridges that complete every assignment at once.
type Config struct {
	// Brokers are the seed brokers. Default none: an embedded broker is
	// started on 127.0.0.1 for the run.
	Brokers []string
	// Prefix is the topic prefix; every run should use fresh topics.
	// Default "bench-<unix nanos>.".
	Prefix string
	// Partitions of arrivals and worker-events. Default 8.
	Partitions int32
	// Workers is the number of simulated workers. Default 8.
	Workers int
	// Functions is the number of distinct functions arrivals cycle
	// through. Default 100.
	Functions int
	// Rate is the arrival rate per second. Default 0: as fast as the
	// window allows.
	Rate float64
	// Window bounds arrivals sent but not yet seen assigned, so an
	// unbounded run measures throughput, not queueing. Default 4,096.
	Window int
	// Duration is how long arrivals are driven. Default 10s.
	Duration time.Duration
	// Count, if positive, stops after this many arrivals instead.
	Count int
	// Warmup arrivals are sent and awaited before measuring. Default 500.
	Warmup int
	// Policy is the scheduler's policy. Default "pull".
	Policy string
	// Linger is the scheduler's producer linger. Default 0: the
	// scheduler's own default (see Config.Linger).
	Linger time.Duration
	// DriverLinger is the linger of the producer the load generator and
	// the no-op bridges share. They run on the same machine as the
	// scheduler and the broker, so every produce request they send costs
	// the broker CPU the scheduler would otherwise get; a small linger
	// batches them (the wait counts in the measured latency). Default 2ms;
	// negative: none.
	DriverLinger time.Duration
	// Logger receives the parts' logs. Default: none.
	Logger zerolog.Logger
}

// Result is what Run measured. Latency runs from an arrival's
// arrived stamp (set just before it is produced) to the moment a bridge
// consumed its assignment record: arrival produce, scheduler consume,
// decision, assignment produce and bridge fetch, all through the broker.
type Result struct {
	Broker    string        // "embedded" or the seed brokers
	Arrivals  int           // arrivals sent in the measured phase
	Assigned  int           // distinct arrivals seen assigned in it
	Elapsed   time.Duration // first arrival sent to last assignment seen
	PerSecond float64       // Assigned / Elapsed: decisions per second
	P50, P99  time.Duration // arrival-to-assignment latency
	Max       time.Duration
	// InP50 and InP99 split the latency: from the arrived stamp to the
	// scheduler's decision (arrival produce, scheduler fetch, hand-off to
	// the loop). The rest is the assignment's produce and the bridge's
	// fetch.
	InP50, InP99 time.Duration
	Rejected     int // results the scheduler published (should be 0)
	Duplicate    int // assignments seen more than once
}

// String formats r on one line.
func (r Result) String() string {
	return fmt.Sprintf("broker=%s arrivals=%d assigned=%d elapsed=%v decisions/s=%.0f p50=%v p99=%v max=%v in-p50=%v in-p99=%v rejected=%d duplicates=%d",
		r.Broker, r.Arrivals, r.Assigned, r.Elapsed.Round(time.Millisecond), r.PerSecond,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond),
		r.InP50.Round(time.Microsecond), r.InP99.Round(time.Microsecond), r.Rejected, r.Duplicate)
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "."
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.Functions == 0 {
		c.Functions = 100
	}
	if c.Window == 0 {
		c.Window = 4096
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 500
	}
	if c.DriverLinger == 0 {
		c.DriverLinger = 2 * time.Millisecond
	} else if c.DriverLinger < 0 {
		c.DriverLinger = 0
	}
	return c
}

// Bench runs one scheduler against no-op bridges through the broker and
// reports decisions per second and arrival-to-assignment latency.
func Run(ctx context.Context, cfg Config) (Result, error) {
	rig, err := newBenchRig(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer rig.close()
	if err := rig.drive(ctx, rig.cfg.Warmup, 0, 0); err != nil {
		return Result{}, fmt.Errorf("bench warmup: %w", err)
	}
	rig.reset()
	if err := rig.drive(ctx, rig.cfg.Count, rig.cfg.Rate, rig.cfg.Duration); err != nil {
		return Result{}, err
	}
	return rig.result(), nil
}

// benchRig is a running broker (maybe), scheduler and bridges.
type benchRig struct {
	cfg    Config
	names  topics.Names
	b      *broker.Broker
	prod   *producer.Producer
	sched  *scheduler.Scheduler
	stop   context.CancelFunc
	wg     sync.WaitGroup
	schErr chan error

	mu      sync.Mutex
	lat     []time.Duration
	latIn   []time.Duration // arrived -> decided
	seen    map[string]bool
	dup     int
	first   time.Time
	last    time.Time
	sent    int
	waiting map[string]bool // ids sent in this phase and not yet seen
	got     atomic.Int64    // assignments seen in this phase (distinct)
	sig     chan struct{}
}

func newBenchRig(ctx context.Context, cfg Config) (*benchRig, error) {
	cfg = cfg.WithDefaults()
	r := &benchRig{cfg: cfg, seen: map[string]bool{}, waiting: map[string]bool{}, sig: make(chan struct{}, 1), schErr: make(chan error, 1)}
	brokers := cfg.Brokers
	if len(brokers) == 0 {
		b, err := broker.Start(broker.Config{Ports: []int{0}, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		r.b = b
		brokers = b.Addrs()
	}
	r.cfg.Brokers = brokers
	tc := topics.Config{Prefix: cfg.Prefix, Partitions: cfg.Partitions}
	r.names = tc.Names()
	prod, err := producer.New(producer.Config{Kafka: kafkaconn.Config{Brokers: brokers, ClientID: "bench"}, Linger: cfg.DriverLinger, MaxBuffered: 2 * cfg.Window, Logger: cfg.Logger})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	r.prod = prod
	adm := kadm.NewClient(prod.Client())
	workers := make([]string, cfg.Workers)
	specs := make([]topics.Spec, cfg.Workers)
	for i := range workers {
		workers[i] = fmt.Sprintf("bench-w%d", i)
		specs[i] = tc.InvokerSpec(workers[i])
	}
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = topics.EnsureAll(pctx, adm, tc)
	if err == nil {
		_, err = topics.Ensure(pctx, adm, specs...)
	}
	cancel()
	if err != nil {
		r.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	invokers := make([]string, len(workers))
	for i, w := range workers {
		invokers[i] = r.names.Invoker(w)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("bench-bridges"), kgo.ConsumeTopics(invokers...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		r.close()
		return nil, fmt.Errorf("bench: %w", err)
	}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); defer cl.Close(); r.bridges(runCtx, cl) }()
	go func() { defer r.wg.Done(); r.heartbeats(runCtx, workers) }()

	s, err := scheduler.New(scheduler.Config{Kafka: kafkaconn.Config{Brokers: brokers}, Topics: tc, ID: "bench-scheduler", Policy: cfg.Policy, Linger: cfg.Linger,
		Logger: cfg.Logger, LagInterval: -1, PendingCap: 100000})
	if err != nil {
		r.close()
		return nil, err
	}
	r.sched = s
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.schErr <- s.Run(runCtx) }()
	select {
	case <-s.Ready():
	case err := <-r.schErr:
		r.schErr <- err
		r.close()
		return nil, fmt.Errorf("bench: scheduler: %w", err)
	case <-ctx.Done():
		r.close()
		return nil, ctx.Err()
	}
	// Wait until every worker is in rotation.
	for {
		n := 0
		n = int(metricValue(s.Registry(), "pullsched_scheduler_workers_in_rotation", ""))
		if n == len(workers) {
			break
		}
		select {
		case <-ctx.Done():
			r.close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r, nil
}

func (r *benchRig) close() {
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
	if r.prod != nil {
		r.prod.Close(time.Second)
	}
	if r.b != nil {
		r.b.Close()
	}
}

// heartbeats keeps the workers in rotation.
func (r *benchRig) heartbeats(ctx context.Context, workers []string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, w := range workers {
			rec := &topics.Worker{ID: w, URL: "http://127.0.0.1:1", State: topics.WorkerActive, Source: topics.SourceSidecar,
				Healthy: true, Bridge: "bench", At: time.Now()}
			r.prod.PublishAsync(ctx, r.names.Workers(), rec, func(error) {})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// bridges consumes every invoker topic, records latency and completes each
// assignment at once.
func (r *benchRig) bridges(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		now := time.Now()
		fs.EachRecord(func(rec *kgo.Record) {
			// One JSON pass into the assignment's own type instead of
			// topics.DecodeAssignment's two (header, then body, then
			// validation): the no-op bridges share the scheduler's cores,
			// so they skip checks a real bridge makes.
			a := new(topics.Assignment)
			if err := json.Unmarshal(rec.Value, a); err != nil || a.ID == "" {
				return
			}
			r.mu.Lock()
			if r.seen[a.ID] {
				r.dup++
				r.mu.Unlock()
				return
			}
			r.seen[a.ID] = true
			if r.waiting[a.ID] {
				delete(r.waiting, a.ID)
				r.lat = append(r.lat, now.Sub(a.Arrived))
				r.latIn = append(r.latIn, a.Assigned.Sub(a.Arrived))
				r.last = now
				r.got.Add(1)
			}
			r.mu.Unlock()
			c := &topics.Completion{ID: a.ID, Function: a.Function, Worker: a.Worker, OK: true, Start: topics.StartWarm,
				WarmHint: a.Warm, At: now}
			r.prod.PublishAsync(ctx, r.names.WorkerEvents(), c, func(error) {})
		})
		select {
		case r.sig <- struct{}{}:
		default:
		}
	}
}

// reset starts a new measured phase.
func (r *benchRig) reset() {
	r.mu.Lock()
	r.lat, r.latIn, r.dup, r.sent = r.lat[:0], r.latIn[:0], 0, 0
	r.first, r.last = time.Time{}, time.Time{}
	clear(r.waiting)
	r.got.Store(0)
	r.mu.Unlock()
}

// drive sends arrivals (count of them, or for d) at rate per second (0: as
// fast as the window allows), then waits until all are seen assigned.
func (r *benchRig) drive(ctx context.Context, count int, rate float64, d time.Duration) error {
	start := time.Now()
	r.mu.Lock()
	r.first = start
	r.mu.Unlock()
	var perr atomic.Value
	sent := 0
	fnName := func(i int) string { return "fn-" + strconv.Itoa(i%r.cfg.Functions) }
	for {
		if count > 0 && sent >= count || count <= 0 && time.Since(start) >= d {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if v := perr.Load(); v != nil {
			return v.(error)
		}
		// How many may go now: the window, and the rate's schedule.
		allowed := r.cfg.Window - (sent - int(r.got.Load()))
		if rate > 0 {
			due := int(rate*time.Since(start).Seconds()) + 1 - sent
			allowed = min(allowed, due)
		}
		if count > 0 {
			allowed = min(allowed, count-sent)
		}
		if allowed <= 0 {
			select {
			case <-r.sig:
			case <-time.After(200 * time.Microsecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		for range allowed {
			a := &topics.Arrival{ID: topics.NewID(), Function: fnName(sent), Arrived: time.Now()}
			r.mu.Lock()
			r.waiting[a.ID] = true
			r.mu.Unlock()
			r.prod.PublishAsync(ctx, r.names.Arrivals(), a, func(err error) {
				if err != nil {
					perr.CompareAndSwap(nil, err)
				}
			})
			sent++
		}
	}
	r.mu.Lock()
	r.sent = sent
	r.mu.Unlock()
	wait := time.NewTimer(60 * time.Second)
	defer wait.Stop()
	for int(r.got.Load()) < sent {
		select {
		case <-r.sig:
		case <-time.After(10 * time.Millisecond):
		case <-wait.C:
			return fmt.Errorf("bench: %d of %d arrivals never seen assigned", sent-int(r.got.Load()), sent)
		case err := <-r.schErr:
			r.schErr <- err
			return errors.Join(errors.New("bench: scheduler stopped"), err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// result summarises the measured phase.
func (r *benchRig) result() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{Broker: "embedded", Arrivals: r.sent, Assigned: len(r.lat), Duplicate: r.dup}
	if r.b == nil {
		res.Broker = fmt.Sprint(r.cfg.Brokers)
	}
	if !r.last.IsZero() {
		res.Elapsed = r.last.Sub(r.first)
	}
	if res.Elapsed > 0 {
		res.PerSecond = float64(res.Assigned) / res.Elapsed.Seconds()
	}
	if n := len(r.lat); n > 0 {
		l := slices.Clone(r.lat)
		slices.Sort(l)
		res.P50 = l[n/2]
		res.P99 = l[min(n-1, n*99/100)]
		res.Max = l[n-1]
		l = slices.Clone(r.latIn)
		slices.Sort(l)
		res.InP50 = l[n/2]
		res.InP99 = l[min(n-1, n*99/100)]
	}
	var rej float64
	for _, reason := range []string{topics.ReasonOverloaded, topics.ReasonNoWorkers, topics.ReasonTimeout} {
		rej += metricValue(r.sched.Registry(), "pullsched_scheduler_results_total", reason)
	}
	res.Rejected = int(rej)
	return res
}

// metricValue reads a gauge or counter from reg by name; with reason set,
// the series whose reason label has that value. 0 when absent.
func metricValue(reg prometheus.Gatherer, name, reason string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason != "" && !hasLabel(m, "reason", reason) {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			}
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}
