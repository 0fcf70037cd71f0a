package owsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/owbridge"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/workersim"
)

// Namespace is the namespace every simulated activation runs in.
const Namespace = "guest"

// resultWorker is the member of an activation's result naming the
// invoker that ran it: the controller sees only the virtual invoker in
// the ack, and loadgen wants the worker for its load figures.
const resultWorker = "invoker"

// InvokerConfig configures a simulated invoker.
type InvokerConfig struct {
	// Kafka reaches the brokers. Required.
	Kafka kafkaconn.Config
	// Instance is the invoker's instance number N (it reads invoker<N>).
	Instance int
	// Prefix is put before the invokers' topics (invoker<N>, health,
	// completed<C>), as OpenWhisk's whisk.kafka.topics.prefix does.
	// Default "".
	Prefix string
	// UserMemory is the memory its pings announce. Default: the
	// simulator's MemoryMB.
	UserMemory owbridge.ByteSize
	// Sim configures the simulated worker that runs the activations.
	Sim workersim.Config
	// PingInterval is how often it pings health. Default 1s.
	PingInterval time.Duration
	// Logger receives warnings. Default: discard.
	Logger zerolog.Logger
}

// RunInvoker runs a simulated invoker until ctx ends: it pings health in
// the 2.0 shape, runs every activation of invoker<N> on its simulated
// worker (the action's name is the workersim function), and writes a
// combined ack (blocking) or a completion (non-blocking) to
// completed<C>, with an initTime annotation on a cold start.
func RunInvoker(ctx context.Context, cfg InvokerConfig) error {
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Second
	}
	name := fmt.Sprintf("invoker%d", cfg.Instance)
	cfg.Sim.Name = name
	sim, err := workersim.New(cfg.Sim)
	if err != nil {
		return fmt.Errorf("owsim: %s: %w", name, err)
	}
	defer sim.Close()
	if cfg.UserMemory == 0 {
		mem := cfg.Sim.MemoryMB
		if mem == 0 {
			mem = 16384
		}
		cfg.UserMemory = owbridge.ByteSize(mem) * owbridge.MB
	}
	prod, err := producer.New(producer.Config{Kafka: cfg.Kafka.WithClientID(name), Logger: cfg.Logger})
	if err != nil {
		return fmt.Errorf("owsim: %s: %w", name, err)
	}
	defer prod.Close(5 * time.Second)
	inst := owbridge.InvokerInstanceID{Instance: cfg.Instance, UserMemory: cfg.UserMemory,
		InstanceType: owbridge.InstanceTypeInvoker, Tags: []string{}, DedicatedNamespaces: []string{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		t := time.NewTicker(cfg.PingInterval)
		defer t.Stop()
		on := true
		ping, _ := (&owbridge.PingMessage{Name: inst, IsEnabled: &on}).Encode()
		for {
			prod.ProduceAsync(ctx, &kgo.Record{Topic: cfg.Prefix + "health", Value: ping}, func(error) {})
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	h := sim.Handler()
	sandboxMB := cfg.Sim.SandboxMB
	if sandboxMB == 0 {
		sandboxMB = 512
	}
	err = consumer.Follow(ctx, consumer.ReaderConfig{Kafka: cfg.Kafka.WithClientID(name + "-activations"), Topic: cfg.Prefix + name,
		Logger: cfg.Logger}, func(r *kgo.Record) {
		m, err := owbridge.DecodeActivation(r.Value)
		if err != nil {
			cfg.Logger.Warn().Err(err).Str("invoker", name).Msg("undecodable activation")
			return
		}
		wg.Go(func() { runActivation(ctx, h, prod, inst, cfg.Prefix, name, sandboxMB, m) })
	}, nil)
	return err
}

// runActivation runs m on the simulated worker and acknowledges it.
func runActivation(ctx context.Context, h http.Handler, prod *producer.Producer, inst owbridge.InvokerInstanceID,
	prefix, name string, memMB int, m *owbridge.ActivationMessage) {
	body := m.Content
	if len(body) == 0 {
		body = json.RawMessage("{}")
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/run/"+m.Action.Name, strings.NewReader(string(body)))
	if err != nil {
		return
	}
	w := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(w, req)
	if ctx.Err() != nil {
		return
	}
	end := time.Now()
	status, result := owbridge.StatusSuccess, map[string]any{resultWorker: name}
	if w.status != http.StatusOK {
		status = owbridge.StatusWhiskError
		result["error"] = strings.TrimSpace(w.body.String())
	}
	res, _ := json.Marshal(result)
	path, _ := json.Marshal(m.Action.String())
	anns := []owbridge.Annotation{{Key: "path", Value: path},
		{Key: "limits", Value: json.RawMessage(fmt.Sprintf(`{"concurrency":1,"logs":10,"memory":%d,"timeout":60000}`, memMB))}}
	if w.header.Get("X-Cold-Start") == "1" {
		anns = append(anns, owbridge.Annotation{Key: "initTime", Value: json.RawMessage("1")})
	}
	dur := end.Sub(start).Milliseconds()
	act := &owbridge.WhiskActivation{Namespace: m.User.Namespace.Name, Name: m.Action.Name, Subject: m.User.Subject,
		ActivationID: m.ActivationID, Start: start.UnixMilli(), End: end.UnixMilli(),
		Response: owbridge.ActivationResponse{StatusCode: status, Result: res}, Logs: json.RawMessage("[]"),
		Version: m.Action.Version, Annotations: anns, Duration: &dur}
	sysErr := status == owbridge.StatusWhiskError
	ack := &owbridge.Ack{Kind: owbridge.AckCompletion, TransID: m.TransID, ActivationID: m.ActivationID,
		IsSystemError: &sysErr, Instance: &inst}
	if m.Blocking {
		ack.Kind, ack.Activation = owbridge.AckCombined, act
	}
	v, err := ack.Encode()
	if err != nil {
		return
	}
	prod.ProduceAsync(ctx, &kgo.Record{Topic: prefix + "completed" + m.RootControllerIndex.AsString, Value: v}, func(error) {})
}

// recorder is the ResponseWriter of an in-process call to the simulator.
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// ControllerConfig configures a simulated controller.
type ControllerConfig struct {
	// Kafka reaches the brokers. Required.
	Kafka kafkaconn.Config
	// Prefix is the controller's topic prefix. Default "owctl.".
	Prefix string
	// Instance is the controller's instance id. Default "0".
	Instance string
	// Timeout bounds one call. Default 5m.
	Timeout time.Duration
	// Logger receives warnings. Default: discard.
	Logger zerolog.Logger
}

// Controller turns HTTP calls into blocking activations of the virtual
// invoker0 and answers each from its ack. Create it with NewController,
// serve Handler, and Run it.
type Controller struct {
	cfg  ControllerConfig
	prod *producer.Producer

	mu      sync.Mutex
	waiting map[string]chan *owbridge.Ack
	ready   chan struct{}
}

// NewController prepares a controller.
func NewController(cfg ControllerConfig) (*Controller, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "owctl."
	}
	if cfg.Instance == "" {
		cfg.Instance = "0"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	p, err := producer.New(producer.Config{Kafka: cfg.Kafka.WithClientID("owsim-controller"), Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("owsim: controller: %w", err)
	}
	return &Controller{cfg: cfg, prod: p, waiting: map[string]chan *owbridge.Ack{}, ready: make(chan struct{})}, nil
}

// Ready is closed once the controller has read its acks topic to the end.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Run follows the controller's acks until ctx ends, then closes the
// producer.
func (c *Controller) Run(ctx context.Context) error {
	defer c.prod.Close(5 * time.Second)
	var once sync.Once
	return consumer.Follow(ctx, consumer.ReaderConfig{Kafka: c.cfg.Kafka.WithClientID("owsim-controller-acks"),
		Topic: c.cfg.Prefix + "completed" + c.cfg.Instance, Logger: c.cfg.Logger}, func(r *kgo.Record) {
		a, err := owbridge.DecodeAck(r.Value)
		if err != nil || !a.SlotFree() {
			return
		}
		c.mu.Lock()
		ch := c.waiting[a.ActivationID]
		delete(c.waiting, a.ActivationID)
		c.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}, func() { once.Do(func() { close(c.ready) }) })
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Handler serves POST /run/<fn>: 200 with the result, X-Worker and
// X-Cold-Start for a success, 502 for an action error, 503 for a whisk
// error (pullsched's refusals among them), 504 when no ack came in time.
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run/{fn}", c.serveRun)
	return mux
}

func (c *Controller) serveRun(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil || len(body) > 0 && !json.Valid(body) {
		http.Error(w, "body must be JSON of at most 1 MiB", http.StatusBadRequest)
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	now := time.Now()
	m := &owbridge.ActivationMessage{
		TransID: owbridge.TransactionID{ID: newID()[:16], Start: now.UnixMilli()},
		Action:  owbridge.FullyQualifiedEntityName{Path: Namespace, Name: r.PathValue("fn"), Version: "0.0.1"},
		User: owbridge.Identity{Subject: Namespace, Namespace: owbridge.Namespace{Name: Namespace, UUID: "23bc46b1-71f6-4ed5-8c54-816aa4f8c502"},
			AuthKey: json.RawMessage(`{"api_key":"simulated"}`)},
		ActivationID:        newID(),
		RootControllerIndex: owbridge.ControllerInstanceID{AsString: c.cfg.Instance, InstanceType: owbridge.InstanceTypeController},
		Blocking:            true,
		Content:             body,
	}
	v, err := m.Encode()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ch := make(chan *owbridge.Ack, 1)
	c.mu.Lock()
	c.waiting[m.ActivationID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, m.ActivationID)
		c.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout)
	defer cancel()
	sent := make(chan error, 1)
	c.prod.ProduceAsync(ctx, &kgo.Record{Topic: c.cfg.Prefix + "invoker0", Value: v}, func(err error) { sent <- err })
	if err := <-sent; err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var a *owbridge.Ack
	select {
	case a = <-ch:
	case <-ctx.Done():
		http.Error(w, "no ack in time", http.StatusGatewayTimeout)
		return
	}
	act := a.Activation
	if act == nil {
		http.Error(w, "activation answered without a result", http.StatusBadGateway)
		return
	}
	var res map[string]any
	_ = json.Unmarshal(act.Response.Result, &res)
	if wk, ok := res[resultWorker].(string); ok {
		w.Header().Set("X-Worker", wk)
	}
	switch act.Response.StatusCode {
	case owbridge.StatusSuccess:
		if act.InitTimeMs() >= 0 {
			w.Header().Set("X-Cold-Start", "1")
		} else {
			w.Header().Set("X-Cold-Start", "0")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(act.Response.Result)
	case owbridge.StatusWhiskError:
		http.Error(w, string(act.Response.Result), http.StatusServiceUnavailable)
	default:
		http.Error(w, string(act.Response.Result), http.StatusBadGateway)
	}
}

// ErrNotReady is returned by Start when the cluster did not come up.
var ErrNotReady = errors.New("owsim: cluster not ready")
