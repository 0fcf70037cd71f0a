// Package eval reproduces the evaluation of the Hiku paper (CCGrid 2025) on
// fresh clusters, one per policy, and reports the policies side by side.
//
// For each policy, Run asks a Starter for a fresh cluster (the dev cluster
// of package cluster in `pullsched eval`: an embedded broker and 5 workersim
// workers modelling the paper's m5.xlarge, 4 cores, 16 GiB, 512 MiB
// sandboxes), drives the loadgen workload against it with the same seed,
// and stops it. It then prints a table (policy × metrics) with the relative
// differences to pull, and writes into Config.Out:
//
//   - report.md: settings, both tables, per-stage figures, the plots;
//   - report.json: {"policies": [{"policy", "requests", "mean_latency_ms",
//     "p50_latency_ms", "p99_latency_ms", "rps", "cold_start_rate",
//     "load_cv", "errors"}, ...]}, rates as fractions, latencies in ms of
//     model time;
//   - loadgen-<policy>.json: each run's full loadgen summary;
//   - latency-cdf.png: the latency CDF of every policy;
//   - worker-load.png: each policy's share of requests per worker, workers
//     ranked from busiest.
package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pullsched/pullsched/loadgen"
)

// Starter starts a fresh cluster running policy, its simulated workers
// executing at timeScale (wall time per model time), and returns the base
// URL of its controller and a function that stops it and waits for it.
type Starter func(ctx context.Context, policy string, timeScale float64) (target string, stop func() error, err error)

// DefaultPolicies are the policies compared by default, the baseline first.
func DefaultPolicies() []string { return []string{"pull", "chbl", "leastconn", "random"} }

// Quick settings: a time-scaled run of three 20/50/100-VU stages of 20 s of
// model time each (2 s of wall time each at scale 0.1), which drives a few
// thousand requests per policy and finishes the four default policies in
// well under a minute.
const (
	QuickTimeScale = 0.1
	QuickStageTime = 20 * time.Second
)

// QuickStages are the stages of a quick run.
func QuickStages() []loadgen.Stage {
	return []loadgen.Stage{{VUs: 20, Duration: QuickStageTime}, {VUs: 50, Duration: QuickStageTime}, {VUs: 100, Duration: QuickStageTime}}
}

// Config configures an evaluation. The zero value of every field selects
// its default.
type Config struct {
	// Policies are evaluated in order; the first named "pull" (else the
	// first) is the baseline of the relative differences. Default:
	// DefaultPolicies.
	Policies []string
	// Quick selects the quick settings (QuickTimeScale, QuickStages) for
	// TimeScale and Stages when they are zero. Default false.
	Quick bool
	// TimeScale is the wall time per model time of the workload and the
	// simulated workers. Default 1 (QuickTimeScale when Quick).
	TimeScale float64
	// Stages of the workload, in model time. Default: loadgen's 20, 50 and
	// 100 VUs for 100 s each (QuickStages when Quick).
	Stages []loadgen.Stage
	// Seed seeds the workload; every policy gets the same. Default 0.
	Seed int64
	// Copies of each FunctionBench function. Default 5 (40 functions).
	Copies int
	// ThinkMin and ThinkMax bound the think time (model time). Default 0.1 s
	// and 1.0 s.
	ThinkMin, ThinkMax time.Duration
	// RequestTimeout bounds each request (model time). Default: loadgen's.
	RequestTimeout time.Duration
	// Out is the directory the report files go to, created if needed.
	// Default "eval-out". "-" writes no files.
	Out string
	// Progress receives progress (loadgen's bar or lines, and a line per
	// policy). Default nil: none.
	Progress io.Writer
	// Output receives the side-by-side table. Default nil: none.
	Output io.Writer
}

// ErrConfig is wrapped by every configuration error Run returns.
var ErrConfig = errors.New("eval: invalid config")

func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Policies) == 0 {
		cfg.Policies = DefaultPolicies()
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
		if cfg.Quick {
			cfg.TimeScale = QuickTimeScale
		}
	}
	if len(cfg.Stages) == 0 {
		cfg.Stages = loadgen.DefaultStages()
		if cfg.Quick {
			cfg.Stages = QuickStages()
		}
	}
	if cfg.Out == "" {
		cfg.Out = "eval-out"
	}
	seen := map[string]bool{}
	for _, p := range cfg.Policies {
		if p == "" || seen[p] {
			return cfg, fmt.Errorf("%w: policy %q empty or repeated", ErrConfig, p)
		}
		seen[p] = true
	}
	if !(cfg.TimeScale > 0) {
		return cfg, fmt.Errorf("%w: time scale %v <= 0", ErrConfig, cfg.TimeScale)
	}
	return cfg, nil
}

// Result is one policy's headline figures, as report.json holds them.
type Result struct {
	Policy        string  `json:"policy"`
	Requests      int     `json:"requests"`
	MeanLatencyMS float64 `json:"mean_latency_ms"`
	P50LatencyMS  float64 `json:"p50_latency_ms"`
	P99LatencyMS  float64 `json:"p99_latency_ms"`
	RPS           float64 `json:"rps"`
	ColdStartRate float64 `json:"cold_start_rate"`
	LoadCV        float64 `json:"load_cv"`
	Errors        int     `json:"errors"`
}

// Report is the outcome of an evaluation.
type Report struct {
	// Policies holds the headline figures, in the order run.
	Policies []Result `json:"policies"`
	// Runs holds each policy's full loadgen report, in the same order.
	Runs []*loadgen.Report `json:"-"`
	// Settings are the effective settings (not in report.json).
	Settings Config `json:"-"`
}

// Baseline returns the index of the baseline policy: "pull" if present,
// else 0.
func (r *Report) Baseline() int {
	for i, p := range r.Policies {
		if p.Policy == "pull" {
			return i
		}
	}
	return 0
}

// Run evaluates every policy of cfg on a fresh cluster from start, then
// prints and writes the report. Each cluster is stopped before the next
// starts, also on error.
func Run(ctx context.Context, cfg Config, start Starter) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if start == nil {
		return nil, fmt.Errorf("%w: no starter", ErrConfig)
	}
	rep := &Report{Settings: cfg}
	for i, pol := range cfg.Policies {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "[%d/%d] %s: starting a fresh cluster (time scale %g)\n", i+1, len(cfg.Policies), pol, cfg.TimeScale)
		}
		run, err := runOne(ctx, cfg, pol, start)
		if err != nil {
			return rep, err
		}
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "[%d/%d] %s: %s\n", i+1, len(cfg.Policies), pol, run)
		}
		o := run.Overall
		rep.Runs = append(rep.Runs, run)
		rep.Policies = append(rep.Policies, Result{
			Policy: pol, Requests: o.Requests, MeanLatencyMS: o.MeanMS, P50LatencyMS: o.P50MS, P99LatencyMS: o.P99MS,
			RPS: o.RPS, ColdStartRate: o.ColdStartRate, LoadCV: o.LoadCV, Errors: o.Errors,
		})
	}
	if cfg.Output != nil {
		if err := WriteTable(cfg.Output, rep); err != nil {
			return rep, fmt.Errorf("eval: table: %w", err)
		}
	}
	if cfg.Out != "-" {
		if err := rep.WriteFiles(cfg.Out); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// runOne starts a cluster for pol, drives the workload and stops it.
func runOne(ctx context.Context, cfg Config, pol string, start Starter) (rep *loadgen.Report, err error) {
	target, stop, err := start(ctx, pol, cfg.TimeScale)
	if err != nil {
		return nil, fmt.Errorf("eval: start %s cluster: %w", pol, err)
	}
	defer func() {
		if serr := stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("eval: stop %s cluster: %w", pol, serr))
		}
	}()
	rep, err = loadgen.Run(ctx, loadgen.Config{
		Target: target, Stages: cfg.Stages, ThinkMin: cfg.ThinkMin, ThinkMax: cfg.ThinkMax, Copies: cfg.Copies,
		Seed: cfg.Seed, TimeScale: cfg.TimeScale, RequestTimeout: cfg.RequestTimeout, Progress: cfg.Progress,
	})
	if err != nil {
		return rep, fmt.Errorf("eval: %s: %w", pol, err)
	}
	return rep, nil
}

// WriteFiles writes report.md, report.json, loadgen-<policy>.json,
// latency-cdf.png and worker-load.png into dir, creating it if needed.
func (r *Report) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: report.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	for i, run := range r.Runs {
		js, err := json.MarshalIndent(run, "", "  ")
		if err != nil {
			return fmt.Errorf("eval: loadgen summary: %w", err)
		}
		name := fmt.Sprintf("loadgen-%s.json", safeName(r.Policies[i].Policy))
		if err := os.WriteFile(filepath.Join(dir, name), append(js, '\n'), 0o644); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	}
	if err := plotLatencyCDF(r, filepath.Join(dir, "latency-cdf.png")); err != nil {
		return err
	}
	if err := plotWorkerLoad(r, filepath.Join(dir, "worker-load.png")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

// safeName keeps letters, digits, '-' and '_' of a policy name for a file
// name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
