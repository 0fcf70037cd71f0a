package workersim

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/workload"
)

// Config configures a Sim. The zero value of every field selects its default.
type Config struct {
	// Name is the worker id reported in X-Worker and in answers. Default:
	// Advertise, else the listen address once Serve runs, else "workersim".
	Name string
	// Cores is the number of simulated CPUs shared by processor sharing.
	// Default 4.
	Cores int
	// MemoryMB is the size of the sandbox memory pool. Default 16384.
	MemoryMB int
	// SandboxMB is the memory each sandbox holds. Default 512.
	SandboxMB int
	// FreeGoal is the fraction of the pool the evictor keeps free by evicting
	// idle sandboxes. Default 0.2 (OpenLambda's evictor); negative means 0
	// (evict only when a new sandbox finds no free slot).
	FreeGoal float64
	// KeepAlive is how long, in model time, an idle sandbox lives before it
	// is evicted. Default 0: no keep-alive expiry.
	KeepAlive time.Duration
	// NotifyURL is the base URL eviction notices are posted to, as
	// POST <NotifyURL>/destroySandbox/<fn> with body {"host":"<Advertise>"}.
	// Default empty: no notices.
	NotifyURL string
	// NotifyTimeout bounds each notice post. Default 2s.
	NotifyTimeout time.Duration
	// NotifyQueue bounds the notices waiting to be sent; more are dropped
	// and counted. Default 1024.
	NotifyQueue int
	// NotifyClient sends notices. Default: a client with NotifyTimeout.
	NotifyClient *http.Client
	// Advertise is the host:port put in notices. Default: the listen address
	// once Serve runs (an unspecified host becomes 127.0.0.1).
	Advertise string
	// SilentEvictions is the fraction of evictions not announced, as in real
	// OpenLambda. Default 0.
	SilentEvictions float64
	// TimeScale maps model time to wall time: 1 is real time, 0.1 runs ten
	// times faster. Default 1.
	TimeScale float64
	// Jitter is the relative, seeded, uniform jitter of execution and cold
	// start times (±Jitter). Default 0.02; negative means none.
	Jitter float64
	// Seed seeds the jitter and silent-eviction draws. Default 0 (a fixed
	// seed, so runs are repeatable).
	Seed int64
	// ColdCPU makes the cold-start extra CPU work that shares the cores
	// instead of a wait. Default false.
	ColdCPU bool
	// Default is the profile of functions that are not FunctionBench
	// functions. Default: cold 500ms, warm 100ms, kind "cpu".
	Default workload.Profile
	// QueueLimit bounds the requests waiting for memory; beyond it requests
	// get 429. Default 1024.
	QueueLimit int
	// MaxBodyBytes bounds request bodies (413 beyond). Default 6 MiB.
	MaxBodyBytes int64
	// ShutdownTimeout bounds the graceful drain of Serve. Default 30s.
	ShutdownTimeout time.Duration
	// WriteTimeout is the HTTP server's write timeout; it must exceed the
	// longest invocation including its wait for memory. Default 5m.
	WriteTimeout time.Duration
	// Logger receives the simulator's logs. Default: the zero logger, which
	// discards.
	Logger zerolog.Logger
}

// ErrConfig is wrapped by every configuration error returned by New.
var ErrConfig = errors.New("workersim: invalid config")

// WithDefaults returns cfg with defaults applied, or an error wrapping
// ErrConfig.
// Defaults of a simulated worker: the paper's m5.xlarge (4 vCPUs, 16 GiB)
// with OpenLambda's 512 MB sandboxes.
const (
	DefaultCores     = 4
	DefaultMemoryMB  = 16384
	DefaultSandboxMB = 512
)

func (cfg Config) WithDefaults() Config {
	if cfg.Cores == 0 {
		cfg.Cores = DefaultCores
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = DefaultMemoryMB
	}
	if cfg.SandboxMB == 0 {
		cfg.SandboxMB = DefaultSandboxMB
	}
	switch {
	case cfg.FreeGoal == 0:
		cfg.FreeGoal = 0.2
	case cfg.FreeGoal < 0:
		cfg.FreeGoal = 0
	}
	if cfg.NotifyTimeout == 0 {
		cfg.NotifyTimeout = 2 * time.Second
	}
	if cfg.NotifyQueue == 0 {
		cfg.NotifyQueue = 1024
	}
	if cfg.TimeScale == 0 {
		cfg.TimeScale = 1
	}
	switch {
	case cfg.Jitter == 0:
		cfg.Jitter = 0.02
	case cfg.Jitter < 0:
		cfg.Jitter = 0
	}
	if cfg.Default.Cold == 0 && cfg.Default.Warm == 0 {
		cfg.Default.Cold = 500 * time.Millisecond
		cfg.Default.Warm = 100 * time.Millisecond
		if cfg.Default.Kind == "" {
			cfg.Default.Kind = "cpu"
		}
	}
	if cfg.Default.Name == "" {
		cfg.Default.Name = "default"
	}
	if cfg.QueueLimit == 0 {
		cfg.QueueLimit = 1024
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 6 << 20
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Minute
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Advertise
	}
	return cfg
}

// Validate reports a setting that cannot work; its errors wrap ErrConfig.
func (cfg Config) Validate() error { return cfg.WithDefaults().validate() }

func (cfg Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case cfg.Cores < 1:
		return bad("cores %d < 1", cfg.Cores)
	case cfg.SandboxMB < 1:
		return bad("sandbox-mb %d < 1", cfg.SandboxMB)
	case cfg.MemoryMB < cfg.SandboxMB:
		return bad("memory-mb %d holds no %d MB sandbox", cfg.MemoryMB, cfg.SandboxMB)
	case cfg.FreeGoal >= 1 || math.IsNaN(cfg.FreeGoal):
		return bad("free goal %v not in [0, 1)", cfg.FreeGoal)
	case cfg.KeepAlive < 0:
		return bad("keep-alive %v < 0", cfg.KeepAlive)
	case cfg.NotifyTimeout < 0:
		return bad("notify timeout %v < 0", cfg.NotifyTimeout)
	case cfg.NotifyQueue < 0:
		return bad("notify queue %d < 0", cfg.NotifyQueue)
	case !(cfg.SilentEvictions >= 0 && cfg.SilentEvictions <= 1):
		return bad("silent evictions %v not in [0, 1]", cfg.SilentEvictions)
	case !(cfg.TimeScale > 0) || math.IsInf(cfg.TimeScale, 0):
		return bad("time scale %v <= 0", cfg.TimeScale)
	case !(cfg.Jitter < 1):
		return bad("jitter %v not in [0, 1)", cfg.Jitter)
	case cfg.Default.Warm < 0 || cfg.Default.Cold < 0:
		return bad("default profile has a negative latency")
	case cfg.QueueLimit < 0:
		return bad("queue limit %d < 0", cfg.QueueLimit)
	case cfg.MaxBodyBytes < 0:
		return bad("max body bytes %d < 0", cfg.MaxBodyBytes)
	case cfg.ShutdownTimeout < 0 || cfg.WriteTimeout < 0:
		return bad("negative server timeout")
	}
	if cfg.NotifyURL != "" {
		u, err := url.Parse(cfg.NotifyURL)
		if err != nil {
			return fmt.Errorf("%w: notify url: %w", ErrConfig, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return bad("notify url %q is not an http(s) URL", cfg.NotifyURL)
		}
	}
	return nil
}
