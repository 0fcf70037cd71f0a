package invokerbridge

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// waitFor bounds every wait of these tests.
const waitFor = 30 * time.Second

const reply = "ctl1"

// env is one test's broker, topic names and a producer for test input.
type env struct {
	t       testing.TB
	b       *broker.Broker
	brokers []string
	tcfg    topics.Config
	names   topics.Names
	prod    *producer.Producer
	rec     *recorder
}

func newEnv(t testing.TB) *env {
	t.Helper()
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	p, err := producer.New(producer.Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(time.Second) })
	prefix := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()) + "."
	tcfg := topics.Config{Prefix: prefix, Partitions: 2}
	e := &env{t: t, b: b, brokers: b.Addrs(), tcfg: tcfg, names: tcfg.Names(), prod: p}
	// Created before the recorder, whose metadata requests would otherwise
	// auto-create them with the broker's default partition count.
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := topics.EnsureAll(ctx, kadm.NewClient(p.Client()), tcfg); err != nil {
		t.Fatal(err)
	}
	e.rec = newRecorder(t, b.Addrs(), e.names.Results(reply), e.names.WorkerEvents(), e.names.Workers())
	return e
}

// config is a bridge config for this env with fast timings.
func (e *env) config() Config {
	return Config{
		Kafka:             kafkaconn.Config{Brokers: e.brokers},
		Topics:            e.tcfg,
		Listen:            "127.0.0.1:0",
		Logger:            zerolog.New(zerolog.NewTestWriter(e.t)).Level(zerolog.WarnLevel),
		ID:                "bridge-test",
		HeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		DrainTimeout:      5 * time.Second,
		PublishTimeout:    5 * time.Second,
	}
}

// start runs b until the test ends (or stop is called) and waits until it
// is ready.
func (e *env) start(b *Bridge) (stop func() error) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(waitFor):
				runErr = context.DeadlineExceeded
			}
		})
		return runErr
	}
	e.t.Cleanup(func() { _ = stop() })
	select {
	case <-b.Ready():
	case err := <-errc:
		e.t.Fatalf("bridge stopped before ready: %v", err)
	case <-time.After(waitFor):
		e.t.Fatal("bridge not ready in time")
	}
	return stop
}

// assign publishes an assignment of fn to worker and returns it.
func (e *env) assign(worker, fn string, mod func(*topics.Assignment)) *topics.Assignment {
	e.t.Helper()
	a := &topics.Assignment{ID: topics.NewID(), Function: fn, Worker: worker, Reply: reply,
		Payload: json.RawMessage(`{"n": 1}`), Assigned: time.Now(), Deadline: time.Now().Add(10 * time.Second)}
	if mod != nil {
		mod(a)
	}
	e.publish(e.names.Invoker(worker), a)
	return a
}

func (e *env) publish(topic string, ev topics.Event) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := e.prod.Publish(ctx, topic, ev); err != nil {
		e.t.Fatal(err)
	}
}

// recorder reads the bridge's output topics from their start and keeps
// every decoded event.
type recorder struct {
	t       testing.TB
	mu      sync.Mutex
	results []*topics.Result
	comps   []*topics.Completion
	evicts  []*topics.Eviction
	workers []*topics.Worker
	changed chan struct{}
}

func newRecorder(t testing.TB, brokers []string, tps ...string) *recorder {
	r := &recorder{t: t, changed: make(chan struct{}, 1)}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(tps...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(r.add)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return r
}

func (r *recorder) add(rec *kgo.Record) {
	ev, err := topics.Decode(rec.Value)
	if err != nil {
		r.t.Errorf("undecodable record on %s: %v", rec.Topic, err)
		return
	}
	r.mu.Lock()
	switch e := ev.(type) {
	case *topics.Result:
		r.results = append(r.results, e)
	case *topics.Completion:
		r.comps = append(r.comps, e)
	case *topics.Eviction:
		r.evicts = append(r.evicts, e)
	case *topics.Worker:
		r.workers = append(r.workers, e)
	}
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// until waits until cond, called under the recorder's lock, holds.
func (r *recorder) until(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(waitFor)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			r.t.Fatalf("timed out waiting for %s; have %d results, %d completions, %d evictions, %d worker records",
				what, len(r.results), len(r.comps), len(r.evicts), len(r.workers))
		}
	}
}

func (r *recorder) result(id string) *topics.Result {
	r.t.Helper()
	var out *topics.Result
	r.until("result "+id, func() bool {
		for _, x := range r.results {
			if x.ID == id {
				out = x
				return true
			}
		}
		return false
	})
	return out
}

func (r *recorder) completion(id string) *topics.Completion {
	r.t.Helper()
	var out *topics.Completion
	r.until("completion "+id, func() bool {
		for _, x := range r.comps {
			if x.ID == id {
				out = x
				return true
			}
		}
		return false
	})
	return out
}

// count returns how many results and completions carry id.
func (r *recorder) count(id string) (results, comps int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.results {
		if x.ID == id {
			results++
		}
	}
	for _, x := range r.comps {
		if x.ID == id {
			comps++
		}
	}
	return results, comps
}

// worker waits for a record of worker id that matches cond and returns it.
func (r *recorder) worker(id, what string, cond func(*topics.Worker) bool) *topics.Worker {
	r.t.Helper()
	var out *topics.Worker
	r.until("worker record of "+id+": "+what, func() bool {
		for _, x := range r.workers {
			if x.ID == id && cond(x) {
				out = x
				return true
			}
		}
		return false
	})
	return out
}

// lastWorker is the latest record of worker id, or nil.
func (r *recorder) lastWorker(id string) *topics.Worker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastWorkerLocked(id)
}

// lastWorkerLocked is lastWorker for callers holding the lock (until).
func (r *recorder) lastWorkerLocked(id string) *topics.Worker {
	for i := len(r.workers) - 1; i >= 0; i-- {
		if r.workers[i].ID == id {
			return r.workers[i]
		}
	}
	return nil
}

// sim is a workersim served by an httptest server.
type sim struct {
	s   *workersim.Sim
	srv *httptest.Server
}

func newSim(t *testing.T, cfg workersim.Config) *sim {
	t.Helper()
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 0.01
	}
	s, err := workersim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); _ = s.Close() })
	return &sim{s: s, srv: srv}
}

// kill stops the worker: connections are refused from now on.
func (s *sim) kill() {
	s.srv.Close()
	_ = s.s.Close()
}

func (s *sim) hostport() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// workerID is the id the bridge gives the worker at s by default.
func (s *sim) workerID(t *testing.T) string {
	t.Helper()
	id, err := topics.WorkerIDFromURL(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
