package loadgen

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pullsched/pullsched/workload"
)

// Stage is a period of the run with a fixed number of closed-loop VUs.
type Stage struct {
	// VUs is the number of virtual users; at least 1.
	VUs int `json:"vus"`
	// Duration is how long the stage starts requests, in model time (scaled
	// by Config.TimeScale).
	Duration time.Duration `json:"duration"`
}

// DefaultStages are the stages of the Hiku evaluation: 20, 50 and 100 VUs
// for 100 s each.
func DefaultStages() []Stage {
	return []Stage{{20, 100 * time.Second}, {50, 100 * time.Second}, {100, 100 * time.Second}}
}

// Config configures a run. The zero value of every field selects its
// default, except Target, which is required.
type Config struct {
	// Target is the base URL of a controller, e.g. http://127.0.0.1:9020;
	// requests go to <Target>/run/<fn>. Required.
	Target string
	// Stages are run in order. Default: DefaultStages.
	Stages []Stage
	// ThinkMin and ThinkMax bound the uniform think time of a VU between an
	// answer and its next request, in model time. Default (both zero): 0.1 s
	// and 1.0 s. ThinkMax < 0 means no think time.
	ThinkMin, ThinkMax time.Duration
	// MixMode is how VUs choose functions: MixPerVU or MixShared. Default
	// MixPerVU, the reference k6 script's semantics; see the package
	// documentation.
	MixMode string
	// Copies is the number of copies of each FunctionBench function. Default
	// 5 (40 functions). At most 424/8 = 53.
	Copies int
	// Seed seeds the function mixes and every VU's choices. In per-VU mode
	// it is the reference script's SEED (its randomSeed argument), so a
	// run of that script with SEED=n and this Seed n give each VU the same
	// mix and the same sequence of functions and think times. Default 0 (a
	// fixed seed, so runs are repeatable).
	Seed int64
	// TimeScale scales stage durations, think times and RequestTimeout: 0.1
	// runs ten times faster. Latencies are reported divided by it, in model
	// time. Default 1.
	TimeScale float64
	// RequestTimeout bounds each request, in model time. Default 90 s (above
	// the controller's default 60 s deadline, so the controller's own timeout
	// answer arrives first).
	RequestTimeout time.Duration
	// Client sends the requests. Default: a client whose transport keeps
	// one idle connection per VU, closed when Run returns.
	Client *http.Client
	// Progress receives progress: a bar redrawn in place when it is a
	// terminal, else one line per finished stage. Default nil: none.
	Progress io.Writer
}

// The mix modes of Config.MixMode.
const (
	// MixPerVU gives every VU its own mix, as the Hiku evaluation's k6
	// script does: each VU samples 8×Copies of the 424 Azure 2021
	// functions with its own random stream and weights the 8×Copies names
	// by its sample's invocation counts. Every VU uses the same names, with
	// different weights, so in aggregate the names' popularity is much
	// flatter than a single mix's.
	MixPerVU = "per-vu"
	// MixShared gives every VU the one mix NewMix draws for the seed.
	MixShared = "shared"
)

// ErrConfig is wrapped by every configuration error that Run returns.
var ErrConfig = errors.New("loadgen: invalid config")

// WithDefaults returns cfg with defaults applied, or an error wrapping
// ErrConfig.
func (cfg Config) WithDefaults() Config {
	if len(cfg.Stages) == 0 {
		cfg.Stages = DefaultStages()
	} else {
		cfg.Stages = append([]Stage(nil), cfg.Stages...)
	}
	switch {
	case cfg.ThinkMin == 0 && cfg.ThinkMax == 0:
		cfg.ThinkMin, cfg.ThinkMax = 100*time.Millisecond, time.Second
	case cfg.ThinkMax < 0:
		cfg.ThinkMin, cfg.ThinkMax = 0, 0
	}
	if cfg.MixMode == "" {
		cfg.MixMode = MixPerVU
	}
	if cfg.Copies == 0 {
		cfg.Copies = 5
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 90 * time.Second
	}
	return cfg
}

// Validate reports a setting that cannot work; its errors wrap ErrConfig.
func (cfg Config) Validate() error { return cfg.WithDefaults().validate() }

func (cfg Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return fmt.Errorf("%w: target: %w", ErrConfig, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return bad("target %q is not an http(s) URL", cfg.Target)
	}
	for i, s := range cfg.Stages {
		if s.VUs < 1 || s.Duration <= 0 {
			return bad("stage %d: %d VUs for %v", i+1, s.VUs, s.Duration)
		}
	}
	nfn := len(workload.FunctionBench())
	switch {
	case nfn == 0:
		return fmt.Errorf("loadgen: workload figures: %w", workload.Err())
	case cfg.MixMode != MixPerVU && cfg.MixMode != MixShared:
		return bad("mix %q: want %q or %q", cfg.MixMode, MixPerVU, MixShared)
	case cfg.ThinkMin < 0 || cfg.ThinkMax < cfg.ThinkMin:
		return bad("think time %v–%v", cfg.ThinkMin, cfg.ThinkMax)
	case cfg.Copies < 1 || cfg.Copies*nfn > len(workload.AzureCounts()):
		return bad("copies %d not in [1, %d]", cfg.Copies, len(workload.AzureCounts())/nfn)
	case !(cfg.TimeScale > 0) || math.IsInf(cfg.TimeScale, 0):
		return bad("time scale %v <= 0", cfg.TimeScale)
	case cfg.RequestTimeout < 0:
		return bad("request timeout %v < 0", cfg.RequestTimeout)
	}
	return nil
}

// scaled converts a model-time duration to wall time.
func (cfg Config) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * cfg.TimeScale)
}

// StagesFlag is a flag.Value for a list of stages written
// "VUs:duration,...", e.g. "20:100s,50:100s,100:100s".
type StagesFlag struct{ Stages *[]Stage }

// String formats the stages as Set accepts them.
func (f StagesFlag) String() string {
	if f.Stages == nil {
		return ""
	}
	return FormatStages(*f.Stages)
}

// Set parses s as "VUs:duration,..." into the stages.
func (f StagesFlag) Set(s string) error {
	st, err := ParseStages(s)
	if err != nil {
		return err
	}
	*f.Stages = st
	return nil
}

// ParseStages parses "VUs:duration,...", e.g. "20:100s,50:100s,100:100s".
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		vus, dur, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("%w: stage %q: want VUs:duration", ErrConfig, part)
		}
		n, err := strconv.Atoi(vus)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: stage %q: VUs must be a positive integer", ErrConfig, part)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: stage %q: duration must be positive, like 100s", ErrConfig, part)
		}
		out = append(out, Stage{VUs: n, Duration: d})
	}
	return out, nil
}

// FormatStages writes stages as ParseStages reads them.
func FormatStages(stages []Stage) string {
	parts := make([]string, len(stages))
	for i, s := range stages {
		parts[i] = fmt.Sprintf("%d:%v", s.VUs, s.Duration)
	}
	return strings.Join(parts, ",")
}

// AddFlags registers the workload's flags on fs, writing into c: --target,
// --stages, --think-min, --think-max, --mix, --copies, --seed, --time-scale
// and --request-timeout. Flag defaults are c's current values, or the documented
// Config defaults where c holds zero. Progress and Client are the caller's.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	d := *c
	if len(d.Stages) == 0 {
		d.Stages = DefaultStages()
	}
	if d.ThinkMin == 0 && d.ThinkMax == 0 {
		d.ThinkMin, d.ThinkMax = 100*time.Millisecond, time.Second
	}
	if d.MixMode == "" {
		d.MixMode = MixPerVU
	}
	if d.Copies == 0 {
		d.Copies = 5
	}
	if d.TimeScale == 0 {
		d.TimeScale = 1
	}
	if d.RequestTimeout == 0 {
		d.RequestTimeout = 90 * time.Second
	}
	*c = d
	fs.StringVar(&c.Target, "target", c.Target, "base URL of the controller, e.g. http://127.0.0.1:9020")
	fs.Var(StagesFlag{&c.Stages}, "stages", "closed-loop stages as VUs:duration,... in model time")
	fs.DurationVar(&c.ThinkMin, "think-min", c.ThinkMin, "shortest think time between requests of a VU (model time)")
	fs.DurationVar(&c.ThinkMax, "think-max", c.ThinkMax, "longest think time between requests of a VU (model time; negative: no think time)")
	fs.StringVar(&c.MixMode, "mix", c.MixMode, "function mix: per-vu (each VU its own, as Hiku's k6 script) or shared (one for all VUs)")
	fs.IntVar(&c.Copies, "copies", c.Copies, "copies of each of the 8 FunctionBench functions")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the function mixes and of every VU's choices (per-vu: the k6 script's SEED)")
	fs.Float64Var(&c.TimeScale, "time-scale", c.TimeScale, "wall time per model time (0.1 runs ten times faster; latencies are reported in model time)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "bound on each request (model time)")
}
