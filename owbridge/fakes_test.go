package owbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/scheduler"
	"github.com/pullsched/pullsched/topics"
)

// waitFor bounds every wait of these tests.
const waitFor = 30 * time.Second

const ctlPrefix = "owctl."

// env is one test's broker, scheduler and bridge, with a fake OpenWhisk
// controller (instance "0") and fake invokers on the invoker side.
type env struct {
	t      *testing.T
	ctx    context.Context
	conn   kafkaconn.Config
	tcfg   topics.Config
	prod   *producer.Producer
	bridge *Bridge
	ctl    *fakeController
	// schedURL is the scheduler's HTTP server (its /metrics).
	schedURL string

	bridgeCfg  Config
	bridgeStop func() // stops the running bridge and waits for it
}

// startBridge starts a bridge of e's settings.
func (e *env) startBridge() *Bridge {
	e.t.Helper()
	br, err := New(e.bridgeCfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := br.Run(ctx); err != nil {
			e.t.Errorf("bridge: %v", err)
		}
	}()
	e.bridge = br
	e.bridgeStop = func() { cancel(); <-done }
	return br
}

// stopBridge stops the running bridge, as a crash would but with its
// offsets committed.
func (e *env) stopBridge() {
	if e.bridgeStop != nil {
		e.bridgeStop()
		e.bridgeStop = nil
	}
}

var rotationMetric = regexp.MustCompile(`(?m)^\S*workers_in_rotation (\d+)$`)

// waitRotation waits until the scheduler has n workers in rotation.
func (e *env) waitRotation(n int) {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("%d workers in rotation", n), func() bool {
		resp, err := http.Get(e.schedURL + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := rotationMetric.FindSubmatch(body)
		return m != nil && string(m[1]) == strconv.Itoa(n)
	})
}

type envOpts struct {
	policy     string
	pendingCap int
	cfg        func(*Config)
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	conn := kafkaconn.Config{Brokers: b.Addrs()}
	p, err := producer.New(producer.Config{Kafka: conn.WithClientID("fakes")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(time.Second) })
	ctx, cancel := context.WithCancel(context.Background())
	tcfg := topics.Config{Prefix: "ps.", Partitions: 2}
	e := &env{t: t, ctx: ctx, conn: conn, tcfg: tcfg, prod: p}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	if o.policy == "" {
		o.policy = "pull"
	}
	sched, err := scheduler.New(scheduler.Config{Kafka: conn, Topics: tcfg, ID: "sched-0", Policy: o.policy,
		PendingCap: o.pendingCap, Logger: zerolog.Nop(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := sched.Run(ctx); err != nil {
			t.Errorf("scheduler: %v", err)
		}
	})
	cfg := Config{Kafka: conn, Topics: tcfg, ControllerPrefix: ctlPrefix, ID: "owb", PingInterval: 200 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, InvokerTimeout: 2 * time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	e.bridgeCfg = cfg
	br := e.startBridge()
	t.Cleanup(func() { e.stopBridge() })
	e.schedURL = "http://" + sched.Addr()
	e.ctl = newFakeController(e)
	for i, ch := range []<-chan struct{}{sched.Ready(), br.Ready()} {
		select {
		case <-ch:
		case <-time.After(waitFor):
			t.Fatalf("%s not ready", []string{"scheduler", "bridge"}[i])
		}
	}
	return e
}

// follow reads topic from its start until the test ends.
func (e *env) follow(topic string, fn func(*kgo.Record)) {
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	e.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = consumer.Follow(ctx, consumer.ReaderConfig{Kafka: e.conn.WithClientID("follow-" + topic), Topic: topic}, fn, nil)
	}()
}

func (e *env) produce(topic string, v []byte) {
	e.t.Helper()
	done := make(chan error, 1)
	e.prod.ProduceAsync(e.ctx, &kgo.Record{Topic: topic, Value: v}, func(err error) { done <- err })
	if err := <-done; err != nil {
		e.t.Fatalf("produce to %s: %v", topic, err)
	}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeController writes activations to the virtual invoker and records
// the acks and pings the bridge writes back.
type fakeController struct {
	e     *env
	mu    sync.Mutex
	acks  map[string][][]byte // by activation id, every ack received
	pings [][]byte
	seq   atomic.Int64
}

func newFakeController(e *env) *fakeController {
	c := &fakeController{e: e, acks: map[string][][]byte{}}
	e.follow(ctlPrefix+"completed0", func(r *kgo.Record) {
		a, err := DecodeAck(r.Value)
		if err != nil {
			e.t.Errorf("controller got an undecodable ack: %v: %s", err, r.Value)
			return
		}
		c.mu.Lock()
		c.acks[a.ActivationID] = append(c.acks[a.ActivationID], r.Value)
		c.mu.Unlock()
	})
	e.follow(ctlPrefix+"health", func(r *kgo.Record) {
		c.mu.Lock()
		c.pings = append(c.pings, r.Value)
		c.mu.Unlock()
	})
	return c
}

// activation builds an activation of namespace/action with content.
func (c *fakeController) activation(ns, action string, blocking bool, content any) *ActivationMessage {
	n := c.seq.Add(1)
	body, _ := json.Marshal(content)
	path, name := ns, action
	if i := strings.LastIndexByte(action, '/'); i >= 0 {
		path, name = ns+"/"+action[:i], action[i+1:]
	}
	return &ActivationMessage{
		TransID: TransactionID{ID: fmt.Sprintf("tid%06d", n), Start: 1764150000000 + n},
		Action:  FullyQualifiedEntityName{Path: path, Name: name, Version: "0.0.1"},
		User: Identity{Subject: "subject-" + ns, Namespace: Namespace{Name: ns, UUID: "11111111-2222-3333-4444-555555555555"},
			AuthKey: json.RawMessage(`{"api_key":"fake:fake"}`)},
		ActivationID:        fmt.Sprintf("%032x", 0xabc000000+n),
		RootControllerIndex: ControllerInstanceID{AsString: "0", InstanceType: InstanceTypeController},
		Blocking:            blocking,
		Content:             body,
	}
}

// send writes m to the virtual invoker and returns its bytes.
func (c *fakeController) send(m *ActivationMessage) []byte {
	c.e.t.Helper()
	v, err := m.Encode()
	if err != nil {
		c.e.t.Fatal(err)
	}
	c.e.produce(ctlPrefix+"invoker0", v)
	return v
}

// ack waits for the first ack of id that frees the slot and returns it.
func (c *fakeController) ack(id string) (*Ack, []byte) {
	c.e.t.Helper()
	var a *Ack
	var raw []byte
	eventually(c.e.t, "ack of "+id, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, v := range c.acks[id] {
			if x, _ := DecodeAck(v); x != nil && x.SlotFree() {
				a, raw = x, v
				return true
			}
		}
		return false
	})
	return a, raw
}

func (c *fakeController) ackCount(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acks[id])
}

// fakeInvoker is an OpenWhisk invoker: it pings health, runs the
// activations of invoker<N> in containers kept per namespace and action
// (a cold start adds initTime), and acknowledges as ContainerProxy does:
// a combined ack for blocking activations (or a result then a completion
// when split), a completion for non-blocking ones.
type fakeInvoker struct {
	e       *env
	n       int
	v2      bool
	split   bool
	cancel  context.CancelFunc
	done    chan struct{}
	enabled atomic.Bool
	sysErr  atomic.Bool  // answer every activation with a whisk error
	dupAcks atomic.Bool  // write every ack twice
	run     atomic.Int64 // how long an activation runs, as a time.Duration

	mu    sync.Mutex
	idle  map[string]int // warm idle containers by namespace|action
	seen  map[string][]byte
	runs  map[string]int // activation id → times run
	cold  int
	warm  int
	total int
}

func (e *env) startInvoker(n int, v2 bool) *fakeInvoker {
	ctx, cancel := context.WithCancel(e.ctx)
	inv := &fakeInvoker{e: e, n: n, v2: v2, cancel: cancel, done: make(chan struct{}),
		idle: map[string]int{}, seen: map[string][]byte{}, runs: map[string]int{}}
	inv.enabled.Store(true)
	inv.run.Store(int64(30 * time.Millisecond))
	e.t.Cleanup(inv.stop)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			inv.ping(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Go(func() {
		_ = consumer.Follow(ctx, consumer.ReaderConfig{Kafka: e.conn.WithClientID(fmt.Sprintf("invoker%d", n)),
			Topic: fmt.Sprintf("invoker%d", n)}, func(r *kgo.Record) { inv.handle(ctx, r) }, nil)
	})
	go func() { wg.Wait(); close(inv.done) }()
	return inv
}

// stop crashes the invoker: no more pings, no more work.
func (inv *fakeInvoker) stop() {
	inv.cancel()
	<-inv.done
}

func (inv *fakeInvoker) instance() InvokerInstanceID {
	i := InvokerInstanceID{Instance: inv.n, UserMemory: 1 * GB, InstanceType: InstanceTypeInvoker}
	if inv.v2 {
		i.Tags, i.DedicatedNamespaces = []string{}, []string{}
	}
	return i
}

func (inv *fakeInvoker) ping(ctx context.Context) {
	p := &PingMessage{Name: inv.instance()}
	if inv.v2 {
		en := inv.enabled.Load()
		p.IsEnabled = &en
	}
	v, _ := p.Encode()
	inv.e.prod.ProduceAsync(ctx, &kgo.Record{Topic: "health", Value: v}, func(error) {})
}

func (inv *fakeInvoker) handle(ctx context.Context, r *kgo.Record) {
	m, err := DecodeActivation(r.Value)
	if err != nil {
		inv.e.t.Errorf("invoker%d got an undecodable activation: %v", inv.n, err)
		return
	}
	key := m.User.Namespace.Name + "|" + m.Action.String()
	inv.mu.Lock()
	inv.seen[m.ActivationID] = append([]byte(nil), r.Value...)
	inv.runs[m.ActivationID]++
	cold := inv.idle[key] == 0
	if cold {
		inv.cold++
	} else {
		inv.idle[key]--
		inv.warm++
	}
	inv.total++
	inv.mu.Unlock()
	go func() {
		start := time.Now()
		d := time.Duration(inv.run.Load())
		if cold {
			d += 50 * time.Millisecond
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
		end := time.Now()
		status := StatusSuccess
		if inv.sysErr.Load() {
			status = StatusWhiskError
		}
		inv.acknowledge(ctx, m, status, cold, start, end)
		inv.mu.Lock()
		if status != StatusWhiskError && status != StatusDeveloperError {
			inv.idle[key]++
		}
		inv.mu.Unlock()
	}()
}

func (inv *fakeInvoker) acknowledge(ctx context.Context, m *ActivationMessage, status int, cold bool, start, end time.Time) {
	anns := []Annotation{
		{Key: "path", Value: json.RawMessage(fmt.Sprintf("%q", m.Action.String()))},
		{Key: "waitTime", Value: json.RawMessage("3")},
		{Key: "limits", Value: json.RawMessage(`{"concurrency":1,"logs":10,"memory":384,"timeout":90000}`)},
	}
	if cold {
		anns = append(anns, Annotation{Key: "initTime", Value: json.RawMessage("50")})
	}
	dur := end.Sub(start).Milliseconds()
	act := &WhiskActivation{Namespace: m.User.Namespace.Name, Name: m.Action.Name, Subject: m.User.Subject,
		ActivationID: m.ActivationID, Start: start.UnixMilli(), End: end.UnixMilli(),
		Response: ActivationResponse{StatusCode: status, Result: json.RawMessage(`{"ok":true}`)},
		Logs:     json.RawMessage("[]"), Version: m.Action.Version, Annotations: anns, Duration: &dur}
	se := status == StatusWhiskError
	inst := inv.instance()
	var acks []*Ack
	switch {
	case m.Blocking && inv.split:
		acks = []*Ack{{Kind: AckResult, TransID: m.TransID, ActivationID: m.ActivationID, Activation: act},
			{Kind: AckCompletion, TransID: m.TransID, ActivationID: m.ActivationID, IsSystemError: &se, Instance: &inst}}
	case m.Blocking:
		acks = []*Ack{{Kind: AckCombined, TransID: m.TransID, ActivationID: m.ActivationID, Activation: act, IsSystemError: &se, Instance: &inst}}
	default:
		acks = []*Ack{{Kind: AckCompletion, TransID: m.TransID, ActivationID: m.ActivationID, IsSystemError: &se, Instance: &inst}}
	}
	for _, a := range acks {
		v, err := a.Encode()
		if err != nil {
			inv.e.t.Errorf("encode ack: %v", err)
			return
		}
		times := 1
		if inv.dupAcks.Load() {
			times = 2
		}
		for range times {
			inv.e.prod.ProduceAsync(ctx, &kgo.Record{Topic: "completed" + m.RootControllerIndex.AsString, Value: v}, func(error) {})
		}
	}
}

func (inv *fakeInvoker) stats() (cold, warm, total int) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.cold, inv.warm, inv.total
}

func (inv *fakeInvoker) ran(id string) ([]byte, int) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.seen[id], inv.runs[id]
}
