package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pullsched/pullsched/loadgen"
)

// RunSpec is what one run asks of its cluster.
type RunSpec struct {
	// Policy is the scheduler's policy, e.g. "pull".
	Policy string
	// Capacity is the in-flight capacity each worker's bridge advertises:
	// CapacityUnlimited (-1), CapacityDefault (0: the bridge's default) or a
	// positive number of calls.
	Capacity int
	// TimeScale is the wall time per model time the simulated workers run
	// at.
	TimeScale float64
	// MemoryMB is each simulated worker's sandbox memory, from the
	// scenario.
	MemoryMB int
	// Seed is the workload's seed for this run (the same for every
	// contender of a scenario and seed); a starter may seed the cluster
	// with it.
	Seed int64
}

// Starter starts a fresh cluster as spec says and returns the base URL of
// its controller and a function that stops it and waits for it.
type Starter func(ctx context.Context, spec RunSpec) (target string, stop func() error, err error)

// DefaultPolicies are the contenders compared by default, the baseline
// first.
func DefaultPolicies() []string { return []string{"pull", "chbl", "leastconn", "random"} }

// Quick settings: a time-scaled run of three 20/50/100-VU stages of 20 s of
// model time each (2 s of wall time each at scale 0.1), which drives a few
// thousand requests per run and finishes the four default policies in well
// under a minute per scenario and seed.
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
	// Policies are the contenders, "policy[@unlimited|@default|@N]" (see
	// ParseContender), evaluated in order. Default: DefaultPolicies.
	Policies []string
	// Capacity is the capacity of contenders without a suffix:
	// CapacityUnlimited (-1), CapacityDefault (0) or N. Default 0 (the bridge default: unlimited).
	Capacity int
	// Scenarios names the scenarios (see Scenarios and ScenarioByName), run
	// in order. Default: all of Scenarios. Exclusive with MemoryMB.
	Scenarios []string
	// MemoryMB, when positive, replaces the scenarios by the one scenario
	// "custom-<MemoryMB>". Default 0.
	MemoryMB int
	// Quick selects the quick settings (QuickTimeScale, QuickStages) for
	// TimeScale and Stages when they are zero. Default false.
	Quick bool
	// TimeScale is the wall time per model time of the workload and the
	// simulated workers. Default 1 (QuickTimeScale when Quick).
	TimeScale float64
	// Stages of the workload, in model time. Default: loadgen's 20, 50 and
	// 100 VUs for 100 s each (QuickStages when Quick).
	Stages []loadgen.Stage
	// Seeds are the workload seeds, each run in every scenario, distinct.
	// Default: Seed alone.
	Seeds []int64
	// Seed is the workload seed when Seeds is empty. Default 0.
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
	// run). Default nil: none.
	Progress io.Writer
	// Output receives the tables. Default nil: none.
	Output io.Writer
}

// ErrConfig is wrapped by every configuration error Run returns.
var ErrConfig = errors.New("eval: invalid config")

// plan is what a Config resolves to.
type plan struct {
	contenders []Contender
	scenarios  []Scenario
	seeds      []int64
}

// WithDefaults returns cfg with every zero field set to its default.
func (cfg Config) WithDefaults() Config {
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
	if len(cfg.Seeds) == 0 {
		cfg.Seeds = []int64{cfg.Seed}
	}
	return cfg
}

// Validate reports a setting that cannot work; its errors wrap ErrConfig.
func (cfg Config) Validate() error {
	_, _, err := cfg.resolve()
	return err
}

// resolve applies the defaults and works out what is to run: the
// contenders, the scenarios and the seeds.
func (cfg Config) resolve() (Config, plan, error) {
	cfg = cfg.WithDefaults()
	var p plan
	if !(cfg.TimeScale > 0) {
		return cfg, p, fmt.Errorf("%w: time scale %v <= 0", ErrConfig, cfg.TimeScale)
	}
	var err error
	if p.contenders, err = ParseContenders(cfg.Policies, cfg.Capacity); err != nil {
		return cfg, p, err
	}
	if p.scenarios, err = selectScenarios(cfg.Scenarios, cfg.MemoryMB); err != nil {
		return cfg, p, err
	}
	seen := map[int64]bool{}
	for _, s := range cfg.Seeds {
		if seen[s] {
			return cfg, p, fmt.Errorf("%w: seed %d repeated", ErrConfig, s)
		}
		seen[s] = true
	}
	p.seeds = cfg.Seeds
	return cfg, p, nil
}

// Row is one run's figures, as report.json's "rows" holds them.
type Row struct {
	Scenario string `json:"scenario"`
	MemoryMB int    `json:"memory_mb"`
	Seed     int64  `json:"seed"`
	// Policy is the contender's label, e.g. "pull@unlimited".
	Policy   string `json:"policy"`
	Capacity int    `json:"capacity"`

	Requests      int     `json:"requests"`
	MeanLatencyMS float64 `json:"mean_latency_ms"`
	P50LatencyMS  float64 `json:"p50_latency_ms"`
	P99LatencyMS  float64 `json:"p99_latency_ms"`
	RPS           float64 `json:"rps"`
	ColdStartRate float64 `json:"cold_start_rate"`
	LoadCV        float64 `json:"load_cv"`
	Errors        int     `json:"errors"`

	// IdealMeanLatencyMS, IdealP50LatencyMS and IdealP99LatencyMS are the
	// ideal latencies of the requests the baseline sent in this scenario
	// and seed (see Ideal); 0 when the baseline did not run.
	IdealMeanLatencyMS float64 `json:"ideal_mean_latency_ms"`
	IdealP50LatencyMS  float64 `json:"ideal_p50_latency_ms"`
	IdealP99LatencyMS  float64 `json:"ideal_p99_latency_ms"`
}

// Report is the outcome of an evaluation.
type Report struct {
	// Rows holds each run's figures, in the order run: by scenario, then
	// seed, then contender.
	Rows []Row `json:"rows"`
	// Summary holds each scenario's contenders' figures over the seeds, by
	// scenario, then contender.
	Summary []Summary `json:"summary"`
	// Runs holds each run's full loadgen report, parallel to Rows.
	Runs []*loadgen.Report `json:"-"`
	// Contenders, Scenarios and Seeds are what ran (not in report.json).
	Contenders []Contender `json:"-"`
	Scenarios  []Scenario  `json:"-"`
	Seeds      []int64     `json:"-"`
	// Settings are the effective settings (not in report.json).
	Settings Config `json:"-"`
}

// Baseline returns the label of the baseline contender: the first pull
// with unlimited capacity, else the first pull, else the first; "" with no
// contenders.
func (r *Report) Baseline() string {
	if len(r.Contenders) == 0 {
		return ""
	}
	return r.Contenders[baseline(r.Contenders)].Label
}

// Run evaluates every contender of cfg in every scenario with every seed,
// each on a fresh cluster from start, then prints and writes the report.
// Each cluster is stopped before the next starts, also on error; on error
// the report holds the runs done.
func Run(ctx context.Context, cfg Config, start Starter) (*Report, error) {
	cfg, p, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if start == nil {
		return nil, fmt.Errorf("%w: no starter", ErrConfig)
	}
	rep := &Report{Settings: cfg, Contenders: p.contenders, Scenarios: p.scenarios, Seeds: p.seeds}
	n, k := len(p.scenarios)*len(p.seeds)*len(p.contenders), 0
	for _, sc := range p.scenarios {
		for _, seed := range p.seeds {
			for _, c := range p.contenders {
				k++
				spec := RunSpec{Policy: c.Policy, Capacity: c.Capacity, TimeScale: cfg.TimeScale, MemoryMB: sc.MemoryMB, Seed: seed}
				name := fmt.Sprintf("[%d/%d] scenario=%s seed=%d %s", k, n, sc.Name, seed, c.Label)
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "%s: starting a fresh cluster (%d MB per worker, capacity %s, time scale %g)\n",
						name, sc.MemoryMB, CapacityString(c.Capacity), cfg.TimeScale)
				}
				run, err := runOne(ctx, cfg, spec, c.Label, start)
				if err != nil {
					rep.finish()
					return rep, err
				}
				if cfg.Progress != nil {
					fmt.Fprintf(cfg.Progress, "%s: %s\n", name, run)
				}
				o := run.Overall
				rep.Runs = append(rep.Runs, run)
				rep.Rows = append(rep.Rows, Row{
					Scenario: sc.Name, MemoryMB: sc.MemoryMB, Seed: seed, Policy: c.Label, Capacity: c.Capacity,
					Requests: o.Requests, MeanLatencyMS: o.MeanMS, P50LatencyMS: o.P50MS, P99LatencyMS: o.P99MS,
					RPS: o.RPS, ColdStartRate: o.ColdStartRate, LoadCV: o.LoadCV, Errors: o.Errors,
				})
			}
		}
	}
	rep.finish()
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

// runOne starts a cluster for spec, drives the workload and stops it.
func runOne(ctx context.Context, cfg Config, spec RunSpec, label string, start Starter) (rep *loadgen.Report, err error) {
	target, stop, err := start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("eval: start %s cluster: %w", label, err)
	}
	defer func() {
		if serr := stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("eval: stop %s cluster: %w", label, serr))
		}
	}()
	rep, err = loadgen.Run(ctx, loadgen.Config{
		Target: target, Stages: cfg.Stages, ThinkMin: cfg.ThinkMin, ThinkMax: cfg.ThinkMax, Copies: cfg.Copies,
		Seed: spec.Seed, TimeScale: cfg.TimeScale, RequestTimeout: cfg.RequestTimeout, Progress: cfg.Progress,
	})
	if err != nil {
		return rep, fmt.Errorf("eval: %s: %w", label, err)
	}
	return rep, nil
}

// WriteFiles writes report.md, report.json, and per run
// loadgen-<scenario>-s<seed>-<contender>.json, per scenario
// latency-cdf-<scenario>.png and worker-load-<scenario>.png into dir,
// creating it if needed.
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
		if err := os.WriteFile(filepath.Join(dir, runFileName(r.Rows[i])), append(js, '\n'), 0o644); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
	}
	for _, sc := range r.Scenarios {
		if err := plotLatencyCDF(r, sc, filepath.Join(dir, cdfFileName(sc))); err != nil {
			return err
		}
		if err := plotWorkerLoad(r, sc, filepath.Join(dir, loadFileName(sc))); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}

func runFileName(row Row) string {
	return fmt.Sprintf("loadgen-%s-s%s-%s.json", safeName(row.Scenario), strconv.FormatInt(row.Seed, 10), safeName(row.Policy))
}

func cdfFileName(sc Scenario) string  { return "latency-cdf-" + safeName(sc.Name) + ".png" }
func loadFileName(sc Scenario) string { return "worker-load-" + safeName(sc.Name) + ".png" }

// safeName keeps letters, digits, '-' and '_' of a name for a file name;
// anything else becomes '_'.
func safeName(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return '_'
	}, s)
}
