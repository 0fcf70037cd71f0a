package eval

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/pullsched/pullsched/loadgen"
)

// listFlag is a flag.Value for a comma-separated list.
type listFlag struct{ list *[]string }

func (f listFlag) String() string {
	if f.list == nil {
		return ""
	}
	return strings.Join(*f.list, ",")
}

func (f listFlag) Set(s string) error {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	*f.list = out
	return nil
}

// seedsFlag is a flag.Value for a comma-separated list of seeds.
type seedsFlag struct{ list *[]int64 }

func (f seedsFlag) String() string {
	if f.list == nil {
		return ""
	}
	return seedsString(*f.list)
}

func (f seedsFlag) Set(s string) error {
	var out []int64
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return fmt.Errorf("seed %q: not an integer", p)
		}
		out = append(out, n)
	}
	*f.list = out
	return nil
}

// AddFlags registers the evaluation's flags on fs, writing into c:
// --policies, --capacity, --scenarios, --memory-mb, --seeds, --seed,
// --quick, --time-scale, --stages, --copies, --think-min, --think-max,
// --request-timeout and --out. Flag defaults are c's current values, or
// the documented defaults where c holds zero; --scenarios and --seeds
// default to empty, meaning every scenario and the --seed value;
// --time-scale and --stages default to 0 and empty, meaning "the full run's
// values, or the quick ones with --quick". Progress and Output are the
// caller's.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	if len(c.Policies) == 0 {
		c.Policies = DefaultPolicies()
	}
	if c.Out == "" {
		c.Out = "eval-out"
	}
	if c.Copies == 0 {
		c.Copies = 5
	}
	fs.Var(listFlag{&c.Policies}, "policies", "contenders to compare, comma-separated: policy[@unlimited|@default|@N], the in-flight capacity "+
		"each worker's bridge advertises (unlimited as Hiku's proxy, default the bridge's default (also none), or N); the first pull "+
		"(pull@unlimited if listed) is the baseline")
	fs.IntVar(&c.Capacity, "capacity", c.Capacity, "capacity of contenders without an @ suffix: -1 unlimited, 0 the bridge's default, or N")
	fs.Var(listFlag{&c.Scenarios}, "scenarios", "scenarios, comma-separated (empty: all): 16g (16384 MB per worker), "+
		fmt.Sprintf("paper (%d MB, about the paper's cold starts), 4g (4096 MB), custom-<MB>", PaperMemoryMB))
	fs.IntVar(&c.MemoryMB, "memory-mb", c.MemoryMB, "sandbox memory per worker in MB, instead of --scenarios: the one scenario custom-<MB> (0: use --scenarios)")
	fs.Var(seedsFlag{&c.Seeds}, "seeds", "workload seeds, comma-separated, each run in every scenario with every contender (empty: --seed)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the workload when --seeds is empty, the same for every contender")
	fs.BoolVar(&c.Quick, "quick", c.Quick, "a shortened, time-scaled run (time scale 0.1, stages 20:20s,50:20s,100:20s) for CI and first looks")
	fs.Float64Var(&c.TimeScale, "time-scale", c.TimeScale, "wall time per model time of workload and workers (0: 1, or 0.1 with --quick)")
	fs.Var(loadgen.StagesFlag{Stages: &c.Stages}, "stages", "stages as VUs:duration,... in model time (default 20:100s,50:100s,100:100s, or 20:20s,50:20s,100:20s with --quick)")
	fs.IntVar(&c.Copies, "copies", c.Copies, "copies of each of the 8 FunctionBench functions")
	fs.DurationVar(&c.ThinkMin, "think-min", c.ThinkMin, "shortest think time (model time; 0 with think-max 0: 100ms)")
	fs.DurationVar(&c.ThinkMax, "think-max", c.ThinkMax, "longest think time (model time; 0 with think-min 0: 1s; negative: none)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "bound on each request (model time; 0: 90s)")
	fs.StringVar(&c.Out, "out", c.Out, "directory for report.md, report.json, the per-run loadgen summaries and the plots ('-': none)")
}
