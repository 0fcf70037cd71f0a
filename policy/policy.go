package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Request is one placement question.
type Request struct {
	// Function is the name of the function to run.
	Function string
	// Class is the priority class; higher is more important. Policies ignore
	// it; the pending queue's priority discipline uses it.
	Class int
	// MemoryMB is the memory the function needs, 0 if unknown. The built-in
	// policies accept it but do not use it yet.
	MemoryMB int
	// Now is the only clock the policy sees. A zero Now disables keep-alive
	// expiry for that call, and waiting.
	Now time.Time
	// MayWait allows a Deferred answer (policies that wait for warm
	// instances: pull-wait). A scheduler sets it for requests it can hold
	// and ask about again, and clears it once the Until of an earlier
	// Deferred has passed.
	MayWait bool
	// Waiting is how many requests for Function the caller holds after
	// Deferred answers, not counting this one.
	Waiting int
}

// Code is the outcome of a placement question.
type Code uint8

// The outcomes of Pick. The zero Code is invalid, so a zero Decision is never
// mistaken for a placement.
const (
	// Placed means Decision.Worker was chosen and the policy has counted the
	// assignment as in flight.
	Placed Code = iota + 1
	// NoCapacity means active workers exist but every one of them is at its
	// capacity. It is a result, not a failure: the arrival should wait in a
	// pending queue. Every built-in policy returns NoCapacity only when no
	// worker at all has room, so a scheduler can stop draining its pending
	// queue at the first NoCapacity.
	NoCapacity
	// NoWorkers means no worker is active (none joined, or all draining or
	// left).
	NoWorkers
	// Deferred means the request should wait: an instance of its function
	// is busy and expected to free sooner than a cold start would take.
	// Nothing was counted. Ask again (with MayWait) when an instance of the
	// function may have become idle, and by Decision.Until at the latest,
	// then without MayWait. Returned only when Request.MayWait is set.
	Deferred
)

// String returns the code's name.
func (c Code) String() string {
	switch c {
	case Placed:
		return "placed"
	case NoCapacity:
		return "no-capacity"
	case NoWorkers:
		return "no-workers"
	case Deferred:
		return "deferred"
	default:
		return fmt.Sprintf("Code(%d)", uint8(c))
	}
}

// Decision is a policy's answer to a Request.
type Decision struct {
	// Code says whether the request was placed.
	Code Code
	// Worker is the chosen worker's ID; set only when Code == Placed.
	Worker string
	// Warm is true when the worker was taken from the function's idle queue,
	// i.e. the policy expects a warm start. Pass it back as
	// Completion.WarmHint.
	Warm bool
	// Until is, for Deferred, when to stop waiting for a warm instance.
	Until time.Time
}

// Start is what a worker reported about how an execution started.
type Start uint8

// The start kinds a worker can report.
const (
	// StartUnknown means the worker did not say.
	StartUnknown Start = iota
	// StartCold means a new sandbox was created.
	StartCold
	// StartWarm means an idle sandbox was reused.
	StartWarm
)

// String returns the start kind's name.
func (s Start) String() string {
	switch s {
	case StartUnknown:
		return "unknown"
	case StartCold:
		return "cold"
	case StartWarm:
		return "warm"
	default:
		return fmt.Sprintf("Start(%d)", uint8(s))
	}
}

// Completion reports the end of one assignment made by Pick.
type Completion struct {
	// Worker and Function are those of the assignment.
	Worker, Function string
	// OK is false for a failed execution (worker error, timeout) or an
	// assignment that was never delivered. Either way the slot is released;
	// only OK completions put the worker in the function's idle queue.
	OK bool
	// Start is what the worker reported.
	Start Start
	// WarmHint is Decision.Warm of the decision that led to this assignment.
	// WarmHint with Start == StartCold means the idle entry was stale: the
	// policy drops the remaining idle entries of that (worker, function).
	WarmHint bool
	// Duration is the execution time as the caller measured it (for a
	// cold start, including the sandbox's creation). pull-wait learns
	// warm and cold times per function from it; the other policies ignore
	// it. Feed it to an Estimator for the sjf pending discipline too.
	Duration time.Duration
	// Now is the time of the completion.
	Now time.Time
}

// WorkerInfo describes a worker joining (or updating its capacity).
type WorkerInfo struct {
	// ID names the worker; it must not be empty.
	ID string
	// Capacity is the maximum in-flight work on the worker, counting the
	// load reported through ExternalLoad. 0 (or negative) means unlimited,
	// as in Hiku.
	Capacity int
}

// Policy places requests on workers.
//
// Pick commits its decision: the worker's in-flight count rises by one and,
// for a warm decision, one idle entry is consumed. Every Placed decision must
// later be balanced by exactly one Completed call for the same worker and
// function (OK=false if it never ran). Calls for unknown workers are ignored.
type Policy interface {
	// Name returns the policy's canonical registry name.
	Name() string
	// Pick chooses a worker for r, or says why none can be chosen.
	Pick(r Request) Decision
	// Completed releases the slot taken by an earlier Pick.
	Completed(c Completion)
	// Evicted removes one idle instance of function on worker.
	Evicted(worker, function string, now time.Time)
	// WorkerJoined adds a worker, updates the capacity of a known one, or
	// brings back a draining or departed one.
	WorkerJoined(w WorkerInfo)
	// WorkerDraining stops routing new work to the worker; its in-flight
	// work still completes.
	WorkerDraining(id string)
	// WorkerLeft removes the worker. Late Completed calls for it are
	// harmless.
	WorkerLeft(id string)
	// ExternalLoad sets the in-flight count on the worker caused by other
	// scheduler replicas (from heartbeats). It counts toward load and
	// capacity but not toward InFlight.
	ExternalLoad(id string, inflight int)
	// InFlight returns this policy's own in-flight count for the worker:
	// placed minus completed. It is 0 for unknown workers.
	InFlight(id string) int
}

// Config tunes a policy. The zero Config is valid and selects the defaults.
type Config struct {
	// Seed seeds the policy's random choices (tie-breaks, random, p2c).
	// Any value, including 0, is a valid seed; the same seed and the same
	// calls give the same decisions.
	Seed int64
	// LoadBound is chbl's c: a worker may take a request only while its load
	// is below ceil(c * (total load + 1) / active workers). Default 1.25
	// (when 0); must be >= 1 otherwise.
	LoadBound float64
	// VirtualNodes is the number of points per worker on the hash ring used
	// by chbl and hash. Default 100 (when 0), which keeps the largest
	// worker's share of keys within roughly +-20% of the mean; must not be
	// negative. Memory is 12 bytes per point.
	VirtualNodes int
	// KeepAlive is how long pull trusts an idle entry after the worker last
	// reported that function idle; OpenLambda may evict idle sandboxes under
	// memory pressure without notice. Default 10 minutes (when 0); negative
	// means idle entries never expire, and idle state then grows with every
	// (worker, function) pair ever reported idle (about 80 bytes each).
	KeepAlive time.Duration
	// WaitFactor is pull-wait's patience: a request waits for a busy
	// instance while the wait it expects is below WaitFactor times the
	// cold start's extra time (and for at most that extra time). Default 2 (when
	// 0: DefaultWaitFactor); must be positive otherwise.
	WaitFactor float64
}

// Defaults used when Config fields are zero.
const (
	// DefaultLoadBound is chbl's default c.
	DefaultLoadBound = 1.25
	// DefaultVirtualNodes is the default number of ring points per worker.
	DefaultVirtualNodes = 100
	// DefaultKeepAlive is pull's default idle-entry lifetime.
	DefaultKeepAlive = 10 * time.Minute
	// DefaultWaitFactor is pull-wait's default patience. On the Hiku
	// workload (per-VU mixes, 3 seeds, docs/EVALUATION.md) pull-wait with 2
	// had 49% fewer cold starts than pull at 9 GiB workers, 33% at 16 GiB
	// and 10% at 4 GiB, at pull's mean latency; single-seed runs of an
	// earlier version showed 1 saving far fewer and 4 costing p99.
	DefaultWaitFactor = 2.0
)

// ErrUnknownPolicy is returned (wrapped) by New for a name it does not know.
var ErrUnknownPolicy = errors.New("unknown policy")

// ErrConfig is returned (wrapped) by New for a Config it rejects.
var ErrConfig = errors.New("invalid policy config")

// Validate reports whether cfg is acceptable, with the reason.
func (cfg Config) Validate() error {
	if cfg.LoadBound != 0 && !(cfg.LoadBound >= 1) { // also rejects NaN
		return fmt.Errorf("%w: LoadBound %v must be >= 1 (or 0 for the default %v)", ErrConfig, cfg.LoadBound, DefaultLoadBound)
	}
	if cfg.LoadBound > 1e6 {
		return fmt.Errorf("%w: LoadBound %v is too large", ErrConfig, cfg.LoadBound)
	}
	if cfg.WaitFactor < 0 || cfg.WaitFactor > 1e3 || cfg.WaitFactor != cfg.WaitFactor {
		return fmt.Errorf("%w: WaitFactor %v must be in (0, 1000] (or 0 for the default %v)", ErrConfig, cfg.WaitFactor, DefaultWaitFactor)
	}
	if cfg.VirtualNodes < 0 {
		return fmt.Errorf("%w: VirtualNodes %d must not be negative", ErrConfig, cfg.VirtualNodes)
	}
	if cfg.VirtualNodes > 1<<16 {
		return fmt.Errorf("%w: VirtualNodes %d is more than %d", ErrConfig, cfg.VirtualNodes, 1<<16)
	}
	return nil
}

// WithDefaults returns cfg with zero fields replaced by the defaults.
func (cfg Config) WithDefaults() Config {
	if cfg.LoadBound == 0 {
		cfg.LoadBound = DefaultLoadBound
	}
	if cfg.VirtualNodes == 0 {
		cfg.VirtualNodes = DefaultVirtualNodes
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.WaitFactor == 0 {
		cfg.WaitFactor = DefaultWaitFactor
	}
	return cfg
}

// factory builds a policy from a validated, defaulted Config.
type factory func(cfg Config) Policy

// registry maps canonical names to factories.
var registry = map[string]factory{
	NamePull:      func(cfg Config) Policy { return newPull(cfg) },
	NamePullCHBL:  func(cfg Config) Policy { return newPullCHBL(cfg) },
	NamePullWait:  func(cfg Config) Policy { return newPullWait(cfg) },
	NameCHBL:      func(cfg Config) Policy { return newCHBL(cfg) },
	NameHash:      func(cfg Config) Policy { return newHash(cfg) },
	NameLeastConn: func(cfg Config) Policy { return newLeastConn(cfg) },
	NameP2C:       func(cfg Config) Policy { return newP2C(cfg) },
	NameRandom:    func(cfg Config) Policy { return newRandom(cfg) },
	NameOWHash:    func(cfg Config) Policy { return newOWHash(cfg) },
}

// Canonical policy names.
const (
	// NamePull is Hiku's pull-based policy.
	NamePull = "pull"
	// NamePullCHBL is pull whose fallback, when a function has no idle
	// instance, is consistent hashing with bounded loads instead of least
	// connections: it keeps a function's cold starts on the same few
	// workers, which matters when memory is short.
	NamePullCHBL = "pull-chbl"
	// NamePullWait is pull that waits for a warm instance: a request whose
	// function has no idle instance, but busy ones expected to finish
	// sooner than a cold start would take, is deferred until one does.
	NamePullWait = "pull-wait"
	// NameCHBL is consistent hashing with bounded loads.
	NameCHBL = "chbl"
	// NameHash is plain consistent hashing.
	NameHash = "hash"
	// NameLeastConn is least connections with a random tie-break.
	NameLeastConn = "leastconn"
	// NameP2C is the power of two choices by load.
	NameP2C = "p2c"
	// NameRandom is a uniformly random choice.
	NameRandom = "random"
)

// aliases maps Hiku's policy names to canonical ones.
var aliases = map[string]string{
	"pull-based":        NamePull,
	"hashing-bounded":   NameCHBL,
	"least-connections": NameLeastConn,
}

// Names returns the canonical policy names, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Canonical returns the canonical name for a canonical or alias name
// (case-insensitive, surrounding spaces ignored), or false if unknown.
func Canonical(name string) (string, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	if a, ok := aliases[n]; ok {
		n = a
	}
	if _, ok := registry[n]; !ok {
		return "", false
	}
	return n, true
}

// New builds the named policy. It accepts the canonical names (see Names)
// and Hiku's aliases (pull-based, hashing-bounded, least-connections,
// random); an unknown name yields an error wrapping ErrUnknownPolicy that
// lists the known names.
func New(name string, cfg Config) (Policy, error) {
	n, ok := Canonical(name)
	if !ok {
		al := make([]string, 0, len(aliases))
		for a := range aliases {
			al = append(al, a)
		}
		sort.Strings(al)
		return nil, fmt.Errorf("%w %q: known policies are %s (aliases %s)",
			ErrUnknownPolicy, name, strings.Join(Names(), ", "), strings.Join(al, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("policy %s: %w", n, err)
	}
	return registry[n](cfg.WithDefaults()), nil
}
