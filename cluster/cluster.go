package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/controllerbridge"
	"github.com/pullsched/pullsched/invokerbridge"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/scheduler"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// Config describes the cluster.
type Config struct {
	// Brokers, if set, are used instead of starting an embedded broker.
	Brokers []string
	// Kafka holds the TLS, SASL, client-id and extra franz-go settings of
	// every part's clients, for external Brokers that require them; its
	// own Brokers field is ignored. Default: plaintext, as the embedded
	// broker serves.
	Kafka kafkaconn.Config
	// BrokerPort is the embedded broker's port. Default 0: a free port.
	BrokerPort int
	// Topics names and shapes the topics. Default: topics.Config defaults
	// with 4 partitions.
	Topics topics.Config
	// Policy is the scheduler's policy. Default: the scheduler's.
	Policy string
	// PolicyConfig tunes it (seed, keep-alive, chbl bound).
	PolicyConfig policy.Config
	// Pending is the pending-queue discipline. Default fifo.
	Pending string
	// Workers is the number of simulated workers. Default 5.
	Workers int
	// WorkerCapacity is the in-flight limit each bridge advertises (see
	// invokerbridge.Config.Capacity). Default 0: none.
	WorkerCapacity int
	// Sim is the template of every simulated worker (cores, memory,
	// sandbox size, time scale...); Name, Advertise, NotifyURL and Seed are
	// set per worker. Default: workersim defaults (the paper's m5.xlarge).
	Sim workersim.Config
	// ControllerListen is the ingress address. Default "127.0.0.1:9020";
	// "127.0.0.1:0" picks a free port.
	ControllerListen string
	// SchedulerListen is the scheduler's metrics address. Default
	// "127.0.0.1:0".
	SchedulerListen string
	// AdminToken protects the admin API. Default: none (admin disabled).
	AdminToken string
	// ControllerID names the ingress (its results topic). Default "dev".
	ControllerID string
	// Logger receives every part's logs, each with a "part" field.
	Logger zerolog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Workers == 0 {
		c.Workers = 5
	}
	if c.Topics.Partitions == 0 {
		c.Topics.Partitions = 4
	}
	if c.Topics.Replication == 0 && len(c.Brokers) == 0 {
		c.Topics.Replication = 1
	}
	if c.ControllerListen == "" {
		c.ControllerListen = "127.0.0.1:9020"
	}
	if c.SchedulerListen == "" {
		c.SchedulerListen = "127.0.0.1:0"
	}
	if c.ControllerID == "" {
		c.ControllerID = "dev"
	}
	return c
}

// Worker describes one simulated worker and its bridge.
type Worker struct {
	ID        string // worker id on the workers topic
	URL       string // the simulated OpenLambda API
	BridgeURL string // the bridge's HTTP server (eviction notices, metrics)
}

// Cluster is a running deployment.
type Cluster struct {
	cfg        Config
	brokers    []string
	embedded   *broker.Broker
	controller *controllerbridge.Controller
	sched      *scheduler.Scheduler
	workers    []Worker
	sims       []*workersim.Sim

	// Parts stop in this order: ingress, bridges, scheduler, workers.
	stops []stopper
	mu    sync.Mutex
	done  bool
}

type stopper struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

// Start brings the cluster up and returns when every part is ready, or
// the first error (having stopped what it started).
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	cfg = cfg.WithDefaults()
	c := &Cluster{cfg: cfg, brokers: cfg.Brokers}
	defer func() {
		if err != nil {
			_ = c.Stop() // whatever started; the returned cluster is nil
		}
	}()
	log := cfg.Logger
	if len(c.brokers) == 0 {
		b, err := broker.Start(broker.Config{Ports: []int{cfg.BrokerPort}, Logger: log.With().Str("part", "broker").Logger()})
		if err != nil {
			return nil, err
		}
		c.embedded = b
		c.brokers = b.Addrs()
	}
	if err := c.ensureTopics(ctx); err != nil {
		return nil, err
	}

	// Workers first, then their bridges, so the bridges find them healthy.
	type wb struct {
		sim *workersim.Sim
		ln  net.Listener
	}
	sims := make([]wb, cfg.Workers)
	for i := range sims {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		sims[i].ln = ln
	}
	bridges := make([]*invokerbridge.Bridge, cfg.Workers)
	for i := range sims {
		addr := sims[i].ln.Addr().String()
		id := fmt.Sprintf("worker-%d", i+1)
		b, err := invokerbridge.New(invokerbridge.Config{
			Kafka:     c.conn(),
			Topics:    cfg.Topics,
			Listen:    "127.0.0.1:0",
			Logger:    log,
			ID:        "bridge-" + id,
			WorkerID:  id,
			WorkerURL: "http://" + addr,
			Advertise: addr,
			Capacity:  cfg.WorkerCapacity,
		})
		if err != nil {
			_ = sims[i].ln.Close()
			return nil, fmt.Errorf("bridge of %s: %w", id, err)
		}
		bridges[i] = b
		sc := cfg.Sim
		sc.Name = id
		sc.Advertise = addr
		sc.NotifyURL = "http://" + b.Addr()
		sc.Seed = cfg.Sim.Seed + int64(i)
		sc.Logger = log.With().Str("worker", id).Logger() // the sim adds its part
		sim, err := workersim.New(sc)
		if err != nil {
			_ = sims[i].ln.Close()
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		sims[i].sim = sim
		c.sims = append(c.sims, sim)
		c.workers = append(c.workers, Worker{ID: id, URL: "http://" + addr, BridgeURL: "http://" + b.Addr()})
	}
	// Stop order is the reverse of c.stops: controller first, workers last.
	for i := range sims {
		s := sims[i]
		c.start("workersim", func(ctx context.Context) error { return s.sim.Serve(ctx, s.ln) })
	}
	sched, err := scheduler.New(scheduler.Config{
		Kafka:        c.conn(),
		Topics:       cfg.Topics,
		Listen:       cfg.SchedulerListen,
		Logger:       log,
		ID:           "scheduler-0",
		Policy:       cfg.Policy,
		PolicyConfig: cfg.PolicyConfig,
		Pending:      cfg.Pending,
	})
	if err != nil {
		return nil, err
	}
	c.sched = sched
	c.start("scheduler", sched.Run)
	for _, b := range bridges {
		c.start("invoker", b.Run)
	}
	ctl, err := controllerbridge.New(controllerbridge.Config{
		Kafka:      c.conn(),
		Topics:     cfg.Topics,
		Listen:     cfg.ControllerListen,
		Logger:     log,
		ID:         cfg.ControllerID,
		AdminToken: cfg.AdminToken,
	})
	if err != nil {
		return nil, err
	}
	c.controller = ctl
	c.start("controller", ctl.Run)

	ready := []<-chan struct{}{sched.Ready(), ctl.Ready()}
	for _, b := range bridges {
		ready = append(ready, b.Ready())
	}
	for _, r := range ready {
		if err := c.wait(ctx, r); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// start runs fn until Stop cancels it.
func (c *Cluster) start(name string, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	c.mu.Lock()
	c.stops = append(c.stops, stopper{name: name, cancel: cancel, done: done})
	c.mu.Unlock()
}

// wait waits for a ready channel, failing early if a part has already
// stopped with an error.
func (c *Cluster) wait(ctx context.Context, ready <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ready:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready: %w", ctx.Err())
		case <-tick.C:
			c.mu.Lock()
			for _, s := range c.stops {
				select {
				case err := <-s.done:
					c.mu.Unlock()
					if err == nil {
						err = errors.New("stopped")
					}
					s.done <- err // keep it for Stop
					return fmt.Errorf("%s: %w", s.name, err)
				default:
				}
			}
			c.mu.Unlock()
		}
	}
}

func (c *Cluster) ensureTopics(ctx context.Context) error {
	p, err := producer.New(producer.Config{Kafka: c.conn().WithClientID("pullsched-cluster")})
	if err != nil {
		return err
	}
	defer p.Close(0)
	if _, err := topics.EnsureAll(ctx, kadm.NewClient(p.Client()), c.cfg.Topics); err != nil {
		return fmt.Errorf("topics: %w", kafkaconn.Explain(c.conn(), err))
	}
	return nil
}

// conn is how the parts reach the cluster's brokers.
func (c *Cluster) conn() kafkaconn.Config {
	k := c.cfg.Kafka
	k.Brokers = c.brokers
	return k
}

// Brokers are the seed brokers the cluster uses.
func (c *Cluster) Brokers() []string { return c.brokers }

// ControllerURL is the base URL of the ingress.
func (c *Cluster) ControllerURL() string { return "http://" + c.controller.Addr() }

// SchedulerURL is the base URL of the scheduler's metrics server.
func (c *Cluster) SchedulerURL() string { return "http://" + c.sched.Addr() }

// Workers lists the simulated workers.
func (c *Cluster) Workers() []Worker { return append([]Worker(nil), c.workers...) }

// Sims are the simulated workers, for their statistics.
func (c *Cluster) Sims() []*workersim.Sim { return c.sims }

// Stop shuts the cluster down in order: ingress off, bridges drain and
// deregister, scheduler commits, workers stop, broker closes. It returns
// the parts' errors joined.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return nil
	}
	c.done = true
	stops := c.stops
	c.mu.Unlock()
	var errs []error
	order := []string{"controller", "invoker", "scheduler", "workersim"}
	for _, name := range order {
		var waiting []stopper
		for _, s := range stops {
			if s.name == name {
				s.cancel()
				waiting = append(waiting, s)
			}
		}
		for _, s := range waiting {
			if err := <-s.done; err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			}
		}
	}
	if c.embedded != nil {
		c.embedded.Close()
	}
	return errors.Join(errs...)
}
