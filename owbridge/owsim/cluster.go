package owsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/owbridge"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/scheduler"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// ClusterConfig configures a simulated OpenWhisk deployment placed by
// pullsched.
type ClusterConfig struct {
	// Brokers, if set, are a running Kafka to use instead of an embedded
	// broker.
	Brokers []string
	// OpenWhiskPrefix is put before every OpenWhisk topic (the invokers'
	// invoker<N>, health, completed<C>, and the controller's owctl.*), as
	// whisk.kafka.topics.prefix would, so that runs sharing a Kafka do not
	// read each other's. Default "".
	OpenWhiskPrefix string
	// Policy and PolicyConfig are the scheduler's. Default policy "pull".
	Policy       string
	PolicyConfig policy.Config
	// Invokers is the number of simulated invokers. Default 5.
	Invokers int
	// Sim configures each invoker's simulated worker; its MemoryMB is the
	// invoker's userMemory, its SandboxMB the bridge's slot, so an
	// invoker's capacity is the sandboxes its memory holds, as the
	// balancer's memory semaphores count them for actions of that size.
	Sim workersim.Config
	// Topics are pullsched's topics. Default: prefix "pullsched.", 8
	// partitions.
	Topics topics.Config
	// Listen is the controller's host:port. Default "127.0.0.1:0".
	Listen string
	// Logger receives the parts' logs. Default: discard.
	Logger zerolog.Logger
}

// Cluster is a running simulated deployment.
type Cluster struct {
	url    string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	b      *broker.Broker
	mu     sync.Mutex
	errs   []error
}

// URL is the base URL of the simulated controller (POST /run/<fn>).
func (c *Cluster) URL() string { return c.url }

func (c *Cluster) run(name string, ctx context.Context, fn func(context.Context) error) {
	c.wg.Go(func() {
		if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Errorf("%s: %w", name, err))
			c.mu.Unlock()
		}
	})
}

// Stop stops every part, then the broker, and returns their errors.
func (c *Cluster) Stop() error {
	c.cancel()
	c.wg.Wait()
	if c.b != nil {
		c.b.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

// Start brings up an embedded broker, a scheduler, the OpenWhisk bridge,
// the invokers and the controller, and returns once the controller can
// take calls and every invoker is in the scheduler's rotation (or ctx
// ends).
func Start(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Policy == "" {
		cfg.Policy = policy.NamePull
	}
	if cfg.Invokers == 0 {
		cfg.Invokers = 5
	}
	if cfg.Sim.MemoryMB == 0 {
		cfg.Sim.MemoryMB = workersim.DefaultMemoryMB
	}
	if cfg.Sim.SandboxMB == 0 {
		cfg.Sim.SandboxMB = workersim.DefaultSandboxMB
	}
	if cfg.Topics.Partitions == 0 {
		cfg.Topics.Partitions = topics.DefaultPartitions
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	brokers := cfg.Brokers
	var b *broker.Broker
	if len(brokers) == 0 {
		if b, err = broker.Start(broker.Config{Ports: []int{0}, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
		brokers = b.Addrs()
	}
	rctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{cancel: cancel, b: b}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	conn := kafkaconn.Config{Brokers: brokers}
	sched, err := scheduler.New(scheduler.Config{Kafka: conn, Topics: cfg.Topics, ID: "scheduler-0", Policy: cfg.Policy,
		PolicyConfig: cfg.PolicyConfig, Logger: cfg.Logger, Listen: "127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	c.run("scheduler", rctx, sched.Run)
	br, err := owbridge.New(owbridge.Config{Kafka: conn, Topics: cfg.Topics, ControllerPrefix: cfg.OpenWhiskPrefix + "owctl.", InvokerPrefix: cfg.OpenWhiskPrefix, ID: "openwhisk",
		SlotMB: cfg.Sim.SandboxMB, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c.run("openwhisk", rctx, br.Run)
	if err := waitFor(ctx, sched.Ready(), br.Ready()); err != nil {
		return nil, err
	}
	for i := range cfg.Invokers {
		sim := cfg.Sim
		sim.Seed = cfg.Sim.Seed + int64(i)
		c.run(fmt.Sprintf("invoker%d", i), rctx, func(ctx context.Context) error {
			return RunInvoker(ctx, InvokerConfig{Kafka: conn, Instance: i, Prefix: cfg.OpenWhiskPrefix, Sim: sim, Logger: cfg.Logger})
		})
	}
	ctl, err := NewController(ControllerConfig{Kafka: conn, Prefix: cfg.OpenWhiskPrefix + "owctl.", Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c.run("controller", rctx, ctl.Run)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: ctl.Handler(), ReadHeaderTimeout: 5 * time.Second}
	c.run("http", rctx, func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	c.url = "http://" + ln.Addr().String()
	if err := waitFor(ctx, ctl.Ready()); err != nil {
		return nil, err
	}
	// Every invoker in rotation: each has pinged and been heartbeated.
	metrics := "http://" + sched.Addr() + "/metrics"
	for !inRotation(metrics, cfg.Invokers) {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %d invokers not in rotation: %v", ErrNotReady, cfg.Invokers, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return c, nil
}

var rotation = regexp.MustCompile(`(?m)^\S*workers_in_rotation (\d+)$`)

// inRotation reports whether the scheduler whose metrics are at url has n
// workers in rotation.
func inRotation(url string, n int) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := rotation.FindSubmatch(body)
	return m != nil && string(m[1]) == strconv.Itoa(n)
}

func waitFor(ctx context.Context, chans ...<-chan struct{}) error {
	for _, ch := range chans {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNotReady, ctx.Err())
		}
	}
	return nil
}
