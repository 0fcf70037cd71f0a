package scheduler

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// testClock is a clock tests can move forward.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

var prefixSeq atomic.Int64

// env is one test's broker, topics and helpers.
type env struct {
	t      *testing.T
	b      *broker.Broker
	addrs  []string
	tc     topics.Config
	names  topics.Names
	prod   *producer.Producer
	clock  *testClock
	cancel context.CancelFunc
	ctx    context.Context
}

func newEnv(t *testing.T, partitions int32) *env {
	t.Helper()
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	tc := topics.Config{Prefix: fmt.Sprintf("t%d.", prefixSeq.Add(1)), Partitions: partitions, Replication: 1}
	p, err := producer.New(producer.Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if _, err := topics.EnsureAll(ctx, kadm.NewClient(p.Client()), tc); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, b: b, addrs: b.Addrs(), tc: tc, names: tc.Names(), prod: p, clock: &testClock{}, ctx: ctx, cancel: cancel}
}

func (e *env) config(id string) Config {
	return Config{
		Kafka:          kafkaconn.Config{Brokers: e.addrs},
		Topics:         e.tc,
		ID:             id,
		Clock:          e.clock.Now,
		Tick:           20 * time.Millisecond,
		LagInterval:    200 * time.Millisecond,
		SessionTimeout: 6 * time.Second,
		// Shedding (shed.go) has tests of its own; here arrivals are read
		// late only because a loaded CI machine runs these under -race
		// (TestEveryArrivalAssignedOnce had arrivals answered 429 there).
		ShedLag: time.Minute,
		Logger:  testLogger(),
	}
}

// start runs a scheduler until the returned stop is called (or the test
// ends) and waits until it is ready.
func (e *env) start(cfg Config) (*Scheduler, func()) {
	e.t.Helper()
	s, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("scheduler %s: %v", cfg.ID, err)
			}
		})
	}
	e.t.Cleanup(stop)
	select {
	case <-s.Ready():
	case err := <-done:
		e.t.Fatalf("scheduler %s ended before ready: %v", cfg.ID, err)
	case <-time.After(30 * time.Second):
		e.t.Fatalf("scheduler %s not ready", cfg.ID)
	}
	return s, stop
}

// arrive publishes an arrival and returns its id.
func (e *env) arrive(fn, reply string, deadline time.Time) string {
	e.t.Helper()
	a := &topics.Arrival{ID: topics.NewID(), Function: fn, Reply: reply, Arrived: e.clock.Now(), Deadline: deadline}
	if err := e.prod.Publish(e.ctx, e.names.Arrivals(), a); err != nil {
		e.t.Fatal(err)
	}
	return a.ID
}

// eventually polls cond until it holds or a generous limit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inspect runs fn on the scheduler's loop goroutine.
func inspect(t *testing.T, s *Scheduler, fn func(st *state)) {
	t.Helper()
	if !s.do(func() { fn(s.st) }) {
		t.Fatal("scheduler loop stopped")
	}
}

// bridge is a fake invokerbridge: it heartbeats, reads its invoker topic
// and, when auto is set, completes every assignment at once.
type bridge struct {
	e        *env
	id       string
	capacity int
	auto     bool

	mu       sync.Mutex
	got      []*topics.Assignment
	byID     map[string]int
	inflight int
	healthy  atomic.Bool
	silent   atomic.Bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (e *env) bridge(id string, capacity int, auto bool) *bridge {
	e.t.Helper()
	br := &bridge{e: e, id: id, capacity: capacity, auto: auto, byID: map[string]int{}}
	br.healthy.Store(true)
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	if _, err := topics.Ensure(ctx, kadm.NewClient(e.prod.Client()), e.tc.InvokerSpec(id)); err != nil {
		e.t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumeTopics(e.names.Invoker(id)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	br.cancel = cancel
	br.heartbeat(ctx)
	br.wg.Add(2)
	go func() {
		defer br.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !br.silent.Load() {
					br.heartbeat(ctx)
				}
			}
		}
	}()
	go func() {
		defer br.wg.Done()
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				a, err := topics.DecodeAssignment(r.Value)
				if err != nil {
					e.t.Errorf("bridge %s: %v", id, err)
					return
				}
				br.mu.Lock()
				br.got = append(br.got, a)
				br.byID[a.ID]++
				first := br.byID[a.ID] == 1
				if first && !br.auto {
					br.inflight++
				}
				br.mu.Unlock()
				if first && br.auto {
					br.complete(ctx, a, true)
				}
			})
		}
	}()
	e.t.Cleanup(br.stop)
	return br
}

func (br *bridge) stop() {
	br.cancel()
	br.wg.Wait()
}

func (br *bridge) heartbeat(ctx context.Context) {
	br.mu.Lock()
	n := br.inflight
	br.mu.Unlock()
	w := &topics.Worker{ID: br.id, URL: "http://127.0.0.1:1/" + br.id, State: topics.WorkerActive, Source: topics.SourceSidecar,
		Capacity: br.capacity, InFlight: n, Healthy: br.healthy.Load(), Bridge: "b-" + br.id, At: br.e.clock.Now()}
	if err := br.e.prod.Publish(ctx, br.e.names.Workers(), w); err != nil && ctx.Err() == nil {
		br.e.t.Errorf("heartbeat %s: %v", br.id, err)
	}
}

// complete publishes the completion of a.
func (br *bridge) complete(ctx context.Context, a *topics.Assignment, ok bool) {
	start := topics.StartCold
	if a.Warm {
		start = topics.StartWarm
	}
	c := &topics.Completion{ID: a.ID, Function: a.Function, Worker: br.id, OK: ok, Start: start, WarmHint: a.Warm,
		DurationMs: 1, At: br.e.clock.Now()}
	if err := br.e.prod.Publish(ctx, br.e.names.WorkerEvents(), c); err != nil && ctx.Err() == nil {
		br.e.t.Errorf("completion: %v", err)
	}
	if !br.auto {
		br.mu.Lock()
		br.inflight--
		br.mu.Unlock()
	}
}

// evict publishes an eviction of fn on this worker.
func (br *bridge) evict(fn string) {
	ev := &topics.Eviction{Function: fn, Worker: br.id, At: br.e.clock.Now()}
	if err := br.e.prod.Publish(br.e.ctx, br.e.names.WorkerEvents(), ev); err != nil {
		br.e.t.Fatal(err)
	}
}

// assignment returns the first assignment of id this bridge saw.
func (br *bridge) assignment(id string) *topics.Assignment {
	br.mu.Lock()
	defer br.mu.Unlock()
	for _, a := range br.got {
		if a.ID == id {
			return a
		}
	}
	return nil
}

// counts returns how many times each id was assigned here.
func (br *bridge) counts() map[string]int {
	br.mu.Lock()
	defer br.mu.Unlock()
	out := make(map[string]int, len(br.byID))
	for k, v := range br.byID {
		out[k] = v
	}
	return out
}

// waitAssigned waits for the assignment of id on any of the bridges.
func waitAssigned(t *testing.T, id string, brs ...*bridge) (*bridge, *topics.Assignment) {
	t.Helper()
	var got *topics.Assignment
	var on *bridge
	eventually(t, "assignment of "+id, func() bool {
		for _, br := range brs {
			if a := br.assignment(id); a != nil {
				got, on = a, br
				return true
			}
		}
		return false
	})
	return on, got
}

// results collects the records of one results topic.
type results struct {
	mu  sync.Mutex
	got map[string][]*topics.Result
}

func (e *env) results(controller string) *results {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	if _, err := topics.Ensure(ctx, kadm.NewClient(e.prod.Client()), e.tc.ResultsSpec(controller)); err != nil {
		e.t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumeTopics(e.names.Results(controller)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	res := &results{got: map[string][]*topics.Result{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				x, err := topics.DecodeResult(r.Value)
				if err != nil {
					e.t.Errorf("result: %v", err)
					return
				}
				res.mu.Lock()
				res.got[x.ID] = append(res.got[x.ID], x)
				res.mu.Unlock()
			})
		}
	}()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	return res
}

func (r *results) get(id string) *topics.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if l := r.got[id]; len(l) > 0 {
		return l[0]
	}
	return nil
}

func (r *results) wait(t *testing.T, id string) *topics.Result {
	t.Helper()
	var got *topics.Result
	eventually(t, "result of "+id, func() bool { got = r.get(id); return got != nil })
	return got
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}

func testLogger() zerolog.Logger {
	if os.Getenv("SCHED_TEST_LOG") != "" {
		return zerolog.New(os.Stderr).With().Timestamp().Logger()
	}
	return zerolog.Nop()
}
