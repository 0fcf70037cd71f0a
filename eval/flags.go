package eval

import (
	"flag"
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

// AddFlags registers the evaluation's flags on fs, writing into c:
// --policies, --quick, --time-scale, --stages, --seed, --copies,
// --think-min, --think-max, --request-timeout and --out. Flag defaults are
// c's current values, or the documented defaults where c holds zero;
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
	fs.Var(listFlag{&c.Policies}, "policies", "policies to compare, comma-separated; pull (if listed) is the baseline")
	fs.BoolVar(&c.Quick, "quick", c.Quick, "a shortened, time-scaled run (time scale 0.1, stages 20:20s,50:20s,100:20s) for CI and first looks")
	fs.Float64Var(&c.TimeScale, "time-scale", c.TimeScale, "wall time per model time of workload and workers (0: 1, or 0.1 with --quick)")
	fs.Var(loadgen.StagesFlag{Stages: &c.Stages}, "stages", "stages as VUs:duration,... in model time (default 20:100s,50:100s,100:100s, or 20:20s,50:20s,100:20s with --quick)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the workload, the same for every policy")
	fs.IntVar(&c.Copies, "copies", c.Copies, "copies of each of the 8 FunctionBench functions")
	fs.DurationVar(&c.ThinkMin, "think-min", c.ThinkMin, "shortest think time (model time; 0 with think-max 0: 100ms)")
	fs.DurationVar(&c.ThinkMax, "think-max", c.ThinkMax, "longest think time (model time; 0 with think-min 0: 1s; negative: none)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "bound on each request (model time; 0: 90s)")
	fs.StringVar(&c.Out, "out", c.Out, "directory for report.md, report.json and the plots ('-': none)")
}
