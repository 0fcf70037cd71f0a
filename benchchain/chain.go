package benchchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/controllerbridge"
	"github.com/pullsched/pullsched/invokerbridge"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/scheduler"
	"github.com/pullsched/pullsched/topics"
)

// chain is a running pullsched chain in front of the no-op workers.
type chain struct {
	url       string  // the controller's base URL
	procs     []*proc // the parts, when they run as processes
	brokers   []string
	tc        topics.Config
	kafka     kafkaconn.Config
	ownTopics bool // the topics were made for this run on brokers given to it: delete them at the end

	stopInProc []func() error // in-process parts in stop order
	embedded   *broker.Broker
}

// labelled runs fn with the pprof label part=name: goroutines it starts
// inherit the label, so a CPU profile of an in-process run splits by part
// (go tool pprof -tagfocus part=scheduler).
func labelled(name string, fn func()) {
	pprof.Do(context.Background(), pprof.Labels("part", name), func(context.Context) { fn() })
}

// runner is a part's Run, started in a labelled goroutine.
type runner struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

func startRunner(name string, run func(context.Context) error) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{name: name, cancel: cancel, done: make(chan error, 1)}
	labelled(name, func() { go func() { r.done <- run(ctx) }() })
	return r
}

func (r *runner) stop() error {
	r.cancel()
	if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	return nil
}

// startInProcess starts the chain's parts as goroutines of this process.
func startInProcess(ctx context.Context, cfg Config, workers []*noopWorker) (_ *chain, err error) {
	c := &chain{tc: cfg.topics(), kafka: cfg.Kafka, brokers: cfg.Kafka.Brokers}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if len(c.brokers) == 0 {
		var b *broker.Broker
		labelled("broker", func() { b, err = broker.Start(broker.Config{Ports: []int{0}, Logger: cfg.Logger}) })
		if err != nil {
			return nil, err
		}
		c.embedded, c.brokers = b, b.Addrs()
	} else {
		c.ownTopics = true
	}
	c.kafka.Brokers = c.brokers
	if err := c.ensureTopics(ctx); err != nil {
		return nil, err
	}
	var runners []*runner
	var ready []<-chan struct{}
	var sched *scheduler.Scheduler
	labelled("scheduler", func() {
		sched, err = scheduler.New(scheduler.Config{Kafka: c.kafka, Topics: c.tc, Listen: "127.0.0.1:0", Logger: cfg.Logger,
			ID: "benchchain-scheduler"})
	})
	if err != nil {
		return nil, err
	}
	runners = append(runners, startRunner("scheduler", sched.Run))
	ready = append(ready, sched.Ready())
	for i, w := range workers {
		var b *invokerbridge.Bridge
		labelled("invoker", func() {
			b, err = invokerbridge.New(invokerbridge.Config{Kafka: c.kafka, Topics: c.tc, Listen: "127.0.0.1:0", Logger: cfg.Logger,
				ID: fmt.Sprintf("benchchain-bridge-%d", i), WorkerURL: w.URL()})
		})
		if err != nil {
			for _, r := range runners {
				_ = r.stop()
			}
			return nil, err
		}
		runners = append(runners, startRunner("invoker", b.Run))
		ready = append(ready, b.Ready())
	}
	var ctl *controllerbridge.Controller
	labelled("controller", func() {
		ctl, err = controllerbridge.New(c.controllerConfig(cfg))
	})
	if err != nil {
		for _, r := range runners {
			_ = r.stop()
		}
		return nil, err
	}
	runners = append(runners, startRunner("controller", ctl.Run))
	ready = append(ready, ctl.Ready())
	c.url = "http://" + ctl.Addr()
	// Stop order: controller, bridges, scheduler.
	for i := len(runners) - 1; i >= 0; i-- {
		c.stopInProc = append(c.stopInProc, runners[i].stop)
	}
	for _, ch := range ready {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(60 * time.Second):
			return nil, errors.New("benchchain: the chain was not ready within 60s")
		}
	}
	return c, nil
}

// controllerConfig is the controller's configuration for cfg.
func (c *chain) controllerConfig(cfg Config) controllerbridge.Config {
	return controllerbridge.Config{Kafka: c.kafka, Topics: c.tc, Listen: "127.0.0.1:0", Logger: cfg.Logger, ID: "benchchain",
		AdmissionTarget: cfg.AdmissionTarget}
}

// ensureTopics creates the topics of the run.
func (c *chain) ensureTopics(ctx context.Context) error {
	p, err := producer.New(producer.Config{Kafka: c.kafka.WithClientID("benchchain-topics")})
	if err != nil {
		return err
	}
	defer p.Close(0)
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := topics.EnsureAll(tctx, kadm.NewClient(p.Client()), c.tc); err != nil {
		return fmt.Errorf("benchchain: topics: %w", err)
	}
	return nil
}

// deleteTopics removes the run's topics from brokers it was given.
func (c *chain) deleteTopics() {
	p, err := producer.New(producer.Config{Kafka: c.kafka.WithClientID("benchchain-topics")})
	if err != nil {
		return
	}
	defer p.Close(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(p.Client())
	list, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, t := range list.Names() {
		if strings.HasPrefix(t, c.tc.Prefix) {
			mine = append(mine, t)
		}
	}
	if len(mine) > 0 {
		_, _ = adm.DeleteTopics(ctx, mine...)
	}
}

// close stops every part: ingress first, broker last.
func (c *chain) close() error {
	var errs []error
	for _, stop := range c.stopInProc {
		errs = append(errs, stop())
	}
	c.stopInProc = nil
	for _, kind := range []string{"controller", "invoker", "scheduler", "broker"} {
		var wg sync.WaitGroup
		for _, p := range c.procs {
			if p.kind == kind {
				wg.Go(p.stop)
			}
		}
		wg.Wait()
	}
	if c.ownTopics && len(c.brokers) > 0 {
		c.deleteTopics()
	}
	if c.embedded != nil {
		c.embedded.Close()
	}
	return errors.Join(errs...)
}

// proc is one part running as a pullsched process.
type proc struct {
	name, kind string
	addr       string // its --listen
	cmd        *exec.Cmd
	done       chan struct{}
	log        string
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to stop and kills it after 15 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls GET path on the process until it answers 200.
func (p *proc) waitReady(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("benchchain: %s exited (log %s)", p.name, p.log)
		}
		resp, err := client.Get("http://" + p.addr + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", path, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("benchchain: %s not ready after %s: %v (log %s)", p.name, timeout, last, p.log)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// startProcesses starts the chain's parts as processes of cfg.Binary, each
// logging to a file in cfg.LogDir.
func startProcesses(ctx context.Context, cfg Config, workers []*noopWorker) (_ *chain, err error) {
	c := &chain{tc: cfg.topics(), kafka: cfg.Kafka, brokers: cfg.Kafka.Brokers}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	spawn := func(name, kind string, args ...string) (*proc, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p := &proc{name: name, kind: kind, addr: addr, done: make(chan struct{}), log: filepath.Join(cfg.LogDir, name+".log")}
		f, err := os.Create(p.log)
		if err != nil {
			return nil, err
		}
		args = append([]string{kind, "--listen", addr, "--topic-prefix", c.tc.Prefix,
			"--partitions", strconv.Itoa(int(c.tc.Partitions))}, args...)
		if kind != "broker" {
			args = append(args, "--brokers", strings.Join(c.brokers, ","))
		}
		if cfg.PartProcs > 0 {
			args = append(args, "--gomaxprocs", strconv.Itoa(cfg.PartProcs))
		}
		p.cmd = exec.Command(cfg.Binary, args...)
		p.cmd.Stdout, p.cmd.Stderr = f, f
		p.cmd.Env = append(os.Environ(), "PULLSCHED_LOG_LEVEL="+cfg.logLevel())
		if err := p.cmd.Start(); err != nil {
			f.Close()
			return nil, fmt.Errorf("benchchain: start %s: %w", name, err)
		}
		go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
		c.procs = append(c.procs, p)
		return p, nil
	}
	if len(c.brokers) == 0 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c.brokers = []string{addr}
		// The broker subcommand listens on --brokers; --listen is unused.
		if _, err := spawn("broker", "broker", "--brokers", addr); err != nil {
			return nil, err
		}
		if err := waitTCP(ctx, addr, 30*time.Second); err != nil {
			return nil, err
		}
	} else {
		c.ownTopics = true
	}
	c.kafka.Brokers = c.brokers
	if err := c.ensureTopics(ctx); err != nil {
		return nil, err
	}
	var parts []*proc
	p, err := spawn("scheduler", "scheduler", "--id", "benchchain-scheduler")
	if err != nil {
		return nil, err
	}
	parts = append(parts, p)
	for i, w := range workers {
		p, err := spawn(fmt.Sprintf("invoker-%d", i), "invoker", "--id", fmt.Sprintf("benchchain-bridge-%d", i), "--worker-url", w.URL())
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	ctlArgs := []string{"--id", "benchchain"}
	if cfg.AdmissionTarget != 0 {
		ctlArgs = append(ctlArgs, "--admission-target", cfg.AdmissionTarget.String())
	}
	ctl, err := spawn("controller", "controller", ctlArgs...)
	if err != nil {
		return nil, err
	}
	parts = append(parts, ctl)
	c.url = "http://" + ctl.addr
	for _, p := range parts {
		if err := p.waitReady(ctx, "/readyz", 60*time.Second); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("benchchain: %s not listening after %s: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
