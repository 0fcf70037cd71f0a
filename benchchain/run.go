package benchchain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
)

// Config configures a bench run. Zero fields take the defaults documented
// on each.
type Config struct {
	// Rates are the offered rates, requests per second, run in order.
	// Default 200, 500, 1000, 2000.
	Rates []float64
	// Duration is how long each rate is offered. Default 15s.
	Duration time.Duration
	// Warmup is how long the lowest rate is offered to each target before
	// the measured runs, unrecorded. Default 2s; negative: none.
	Warmup time.Duration
	// Pause is the quiet time between runs. Default 1s.
	Pause time.Duration
	// Workers is the number of no-op workers behind the chain. Default 5,
	// or the number of WorkerAddrs.
	Workers int
	// WorkerAddrs, when set, are the host:port the no-op workers listen
	// on, one per worker (default: free ports of 127.0.0.1), so that an
	// External proxy started beforehand can front the same workers.
	WorkerAddrs []string
	// Functions is how many functions (f-0 ... f-<n-1>) the requests cycle
	// through. Default 40.
	Functions int
	// Timeout bounds each request at the client; the chain is sent the same
	// as ?timeout=. Default 10s.
	Timeout time.Duration
	// Direct and Chain choose the built-in targets; both false, with no
	// Externals, means both. At each rate the direct run (one no-op
	// worker, called directly) goes first, then each External in order,
	// then the chain, so that all are measured side by side.
	Direct, Chain bool
	// Externals are targets other than the bench's own (another proxy in
	// front of the same workers, say), measured like the others.
	Externals []External
	// Kafka reaches the brokers the chain runs on; no Brokers: an embedded
	// broker (in this process, or a `pullsched broker` process with
	// Processes). The run's topics get a prefix of their own and, on
	// given brokers, are deleted at the end.
	Kafka kafkaconn.Config
	// Partitions of the arrivals and worker-events topics. Default 8.
	Partitions int32
	// Processes runs each part as a process of Binary (the pullsched
	// command) instead of in this process, and reports each part's CPU.
	Processes bool
	// Binary is the pullsched executable. Default: this executable.
	Binary string
	// PartProcs, when positive, is the --gomaxprocs of every part process
	// (with Processes). Zero: each part's own default (one P for the
	// invokers, Go's default for the others). `pullsched bench chain`
	// passes DefaultPartProcs unless told otherwise.
	PartProcs int
	// LogDir receives the processes' logs. Default: a temporary directory.
	LogDir string
	// BrokerPID, when set, is the pid of the given broker, whose CPU is
	// then reported as part "broker".
	BrokerPID int
	// CPUProfile, when set, receives a CPU profile of the chain's runs; in
	// process, samples carry the label part=<scheduler|controller|invoker|broker>.
	CPUProfile io.Writer
	// Progress receives one line per finished run. Default: none.
	Progress io.Writer
	// Logger receives the in-process parts' logs. Default: none.
	Logger zerolog.Logger
	// AdmissionTarget is the controller's Config.AdmissionTarget. Default:
	// the controller's default; negative: off.
	AdmissionTarget time.Duration
	// LogLevel is the processes' log level. Default "warn".
	LogLevel string
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.Rates) == 0 {
		c.Rates = []float64{200, 500, 1000, 2000}
	}
	if c.Duration == 0 {
		c.Duration = 15 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Pause == 0 {
		c.Pause = time.Second
	}
	if c.Workers == 0 {
		c.Workers = 5
		if len(c.WorkerAddrs) > 0 {
			c.Workers = len(c.WorkerAddrs)
		}
	}
	if c.Functions == 0 {
		c.Functions = 40
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if !c.Direct && !c.Chain && len(c.Externals) == 0 {
		c.Direct, c.Chain = true, true
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

func (c Config) logLevel() string {
	if c.LogLevel == "" {
		return "warn"
	}
	return c.LogLevel
}

// topics is the run's topic configuration: a prefix of its own, so runs
// on a shared broker never read each other's records.
func (c Config) topics() topics.Config {
	tc := topics.Config{Prefix: fmt.Sprintf("benchchain-%d.", time.Now().UnixNano()), Partitions: c.Partitions}
	if len(c.Kafka.Brokers) == 0 {
		tc.Replication = 1
	}
	return tc
}

// DefaultPartProcs is the --gomaxprocs `pullsched bench chain --processes`
// gives every part: the bench runs all the parts, its client and the
// workers on one machine, where each Go process with a P per core spins
// idle Ps and wakes threads for hand-offs that one P does in place. One P
// each is the advice for parts sharing a machine (docs/BENCHMARKS.md, "One
// P per part", where it was chosen by measurement).
const DefaultPartProcs = 1

// ErrConfig is wrapped by the errors Config.Validate returns.
var ErrConfig = errors.New("benchchain: invalid config")

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	c = c.WithDefaults()
	for _, r := range c.Rates {
		if !(r > 0) {
			return fmt.Errorf("%w: rate %g: want > 0", ErrConfig, r)
		}
	}
	switch {
	case c.Duration < 0 || c.Timeout < 0 || c.Pause < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	case c.PartProcs < 0:
		return fmt.Errorf("%w: part GOMAXPROCS %d: want 0 (each part's default) or more", ErrConfig, c.PartProcs)
	case c.Workers < 1 || c.Functions < 1 || c.Partitions < 1:
		return fmt.Errorf("%w: workers, functions and partitions must be at least 1", ErrConfig)
	case c.CPUProfile != nil && c.Processes:
		return fmt.Errorf("%w: a CPU profile covers in-process parts only; drop --processes", ErrConfig)
	case len(c.WorkerAddrs) > 0 && len(c.WorkerAddrs) != c.Workers:
		return fmt.Errorf("%w: %d worker addresses for %d workers", ErrConfig, len(c.WorkerAddrs), c.Workers)
	}
	seen := map[string]bool{}
	for _, a := range c.WorkerAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil || seen[a] {
			return fmt.Errorf("%w: worker address %q: want distinct host:port", ErrConfig, a)
		}
		seen[a] = true
	}
	names := map[string]bool{}
	for _, e := range c.Externals {
		if err := e.validate(); err != nil {
			return err
		}
		if names[e.Name] {
			return fmt.Errorf("%w: two external targets named %q", ErrConfig, e.Name)
		}
		names[e.Name] = true
	}
	if len(c.Kafka.Brokers) == 0 {
		return nil // the embedded broker
	}
	return c.Kafka.Validate()
}

// Run starts the workers and the chain, offers each rate to each target
// and returns the report.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	cfg = cfg.WithDefaults()
	rep := Report{Mode: "in-process", Broker: "embedded", Workers: cfg.Workers, WorkerAddrs: make([]string, cfg.Workers)}
	if cfg.Processes {
		rep.Mode = "processes"
	}
	if len(cfg.Kafka.Brokers) > 0 {
		rep.Broker = fmt.Sprint(cfg.Kafka.Brokers)
	}
	workers := make([]*noopWorker, cfg.Workers)
	for i := range workers {
		addr := "127.0.0.1:0"
		if len(cfg.WorkerAddrs) > 0 {
			addr = cfg.WorkerAddrs[i]
		}
		w, err := newNoopWorker(addr)
		if err != nil {
			return rep, err
		}
		workers[i] = w
		rep.WorkerAddrs[i] = w.Addr()
		defer w.close()
	}
	meter := cpuMeter{pids: map[string][]int{}}
	if cfg.BrokerPID > 0 {
		meter.pids["broker"] = []int{cfg.BrokerPID}
	}
	externals := map[string]bool{}
	restarted := map[string]External{} // started afresh for each run
	for _, e := range cfg.Externals {
		externals[e.Name] = true
		if len(e.Command) > 0 {
			restarted[e.Name] = e
		} else if e.PID > 0 {
			meter.pids[e.Name] = []int{e.PID}
		}
	}
	var ch *chain
	if cfg.Chain {
		var err error
		if cfg.Processes {
			if cfg.Binary == "" {
				if cfg.Binary, err = os.Executable(); err != nil {
					return rep, err
				}
			}
			if cfg.LogDir == "" {
				if cfg.LogDir, err = os.MkdirTemp("", "benchchain-"); err != nil {
					return rep, err
				}
			}
			fmt.Fprintf(cfg.Progress, "parts' logs in %s\n", cfg.LogDir)
			ch, err = startProcesses(ctx, cfg, workers)
		} else {
			ch, err = startInProcess(ctx, cfg, workers)
		}
		if err != nil {
			return rep, err
		}
		defer ch.close()
		for _, p := range ch.procs {
			meter.pids[p.kind] = append(meter.pids[p.kind], p.pid())
		}
	}
	targets := map[string]*load{}
	var order []string
	inFlight := defaultMaxInFlight()
	if cfg.Direct {
		base := workers[0].URL() + "/run/"
		targets["direct"] = &load{client: newClient(cfg.Timeout), urls: functionURLs(cfg.Functions, func(fn string) string { return base + fn }),
			maxInFlight: inFlight}
		order = append(order, "direct")
	}
	for _, e := range cfg.Externals {
		l := &load{client: newClient(cfg.Timeout), urls: functionURLs(cfg.Functions, e.functionURL), maxInFlight: inFlight}
		if _, ok := restarted[e.Name]; ok {
			if hostListening(l.urls[0]) {
				return rep, fmt.Errorf("%w: external %s: %s is served before its command started: another process listens there", ErrConfig, e.Name, l.urls[0])
			}
		} else if err := firstAnswers(ctx, l.client, l.urls[0], 15*time.Second); err != nil {
			return rep, fmt.Errorf("external %s: %w", e.Name, err)
		}
		targets[e.Name] = l
		order = append(order, e.Name)
	}
	if cfg.Chain {
		q := "?timeout=" + strconv.FormatFloat(cfg.Timeout.Seconds(), 'f', -1, 64)
		base := ch.url + "/run/"
		targets["chain"] = &load{client: newClient(cfg.Timeout), urls: functionURLs(cfg.Functions, func(fn string) string { return base + fn + q }),
			maxInFlight: inFlight}
		order = append(order, "chain")
		if err := firstAnswers(ctx, targets["chain"].client, targets["chain"].urls[0], 60*time.Second); err != nil {
			return rep, fmt.Errorf("chain: %w", err)
		}
	}
	rep.Targets = order
	if cfg.Warmup > 0 {
		low := slices.Min(cfg.Rates)
		for _, t := range order {
			if _, ok := restarted[t]; ok {
				continue // fresh for every run: nothing to warm
			}
			if _, err := targets[t].run(ctx, t, low, cfg.Warmup); err != nil {
				return rep, err
			}
		}
	}
	for _, rate := range cfg.Rates {
		for _, t := range order {
			if err := sleep(ctx, cfg.Pause); err != nil {
				return rep, err
			}
			var ext *externalProc
			if e, ok := restarted[t]; ok {
				var err error
				if ext, err = startExternal(ctx, e, targets[t].client, targets[t].urls[0], 30*time.Second); err != nil {
					return rep, err
				}
				meter.pids[t] = []int{ext.pid()}
			}
			profiling := t == "chain" && cfg.CPUProfile != nil
			if profiling {
				if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
					return rep, err
				}
			}
			var mBefore controllerMetrics
			if t == "chain" {
				mBefore = scrapeController(ctx, ch.url)
			}
			before := meter.sample()
			res, err := targets[t].run(ctx, t, rate, cfg.Duration)
			after := meter.sample()
			if t == "chain" {
				mAfter := scrapeController(ctx, ch.url)
				res.HandlerMeanMs = handlerMeanMs(mBefore, mAfter)
				if mBefore.ok && mAfter.ok {
					res.AdmissionRefused = int(mAfter.refused - mBefore.refused)
				}
			}
			// The next run starts with no connections left from this one.
			targets[t].client.CloseIdleConnections()
			if ext != nil {
				ext.stop()
			}
			if profiling {
				pprof.StopCPUProfile()
				cfg.CPUProfile = nil // one profile: the first chain run
			}
			if err != nil {
				return rep, err
			}
			res.CPU = targetCPU(t, perRequest(before, after, res.Sent), externals)
			rep.Results = append(rep.Results, res)
			fmt.Fprintf(cfg.Progress, "%-8s %6g/s: achieved %.1f/s p50 %.2f p99 %.2f max %.1f ms %s (controller handler mean %.1f ms)\n", t, rate, res.Achieved,
				res.P50, res.P99, res.Max, statusString(res.Statuses), res.HandlerMeanMs)
		}
	}
	return rep, nil
}

// targetCPU keeps, of every part's CPU per request during a run against
// target t, the parts that served it: this process (the client and the
// workers) always; the chain's parts and the broker for the chain; an
// external target's own process for it. The others idled.
func targetCPU(t string, all map[string]float64, externals map[string]bool) map[string]float64 {
	out := map[string]float64{}
	for part, v := range all {
		switch {
		case part == "bench", part == t:
			out[part] = v
		case t == "chain" && !externals[part]:
			out[part] = v
		}
	}
	return out
}

// firstAnswers sends one request at a time to url until ten in a row are
// answered 200: the scheduler has seen the workers, the bridges and the
// results path work.
func firstAnswers(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	streak := 0
	last := ""
	for streak < 10 {
		if time.Now().After(deadline) {
			return fmt.Errorf("benchchain: %s was not answered 200 ten times in a row within %s (last: %s)", url, timeout, last)
		}
		o := (&load{client: client}).one(ctx, url, time.Now())
		if o.status == "200" {
			streak++
			continue
		}
		streak, last = 0, o.status
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
