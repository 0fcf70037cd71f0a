package scheduler

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

// Config configures a Scheduler.
type Config struct {
	// Kafka is how the scheduler reaches the brokers: seed brokers
	// (required), TLS, SASL and extra franz-go options, shared by all its
	// clients. Its ClientID defaults to ID (and ID-workers, ID-rebuild...
	// for the readers).
	Kafka kafkaconn.Config
	// Topics names and shapes the topics. The scheduler creates the fixed
	// topics if they are missing, and invoker.<worker> when a worker first
	// appears. Default: topics.Config defaults (prefix "pullsched.").
	Topics topics.Config
	// Listen is the host:port of the HTTP server (/metrics, /healthz,
	// /readyz). Default "": no server (metrics are still collected).
	Listen string
	// Logger receives the scheduler's logs. Default: none.
	Logger zerolog.Logger

	// ID names this replica in logs, client ids and assignments. Default
	// "<hostname>-<pid>".
	ID string
	// Policy is the placement policy (see policy.Names). Default
	// "pull-wait": on the Hiku workload it has far fewer cold starts than
	// Hiku's pull at the same mean latency (docs/EVALUATION.md).
	Policy string
	// PolicyConfig tunes the policy: seed, keep-alive of idle entries (also
	// how far back worker-events are re-read on a rebalance), chbl bound.
	// Default: the policy package's defaults.
	PolicyConfig policy.Config
	// Pending is the pending-queue discipline: fifo, priority or sjf.
	// Default fifo.
	Pending string
	// PendingCap bounds the pending queue; an arrival that finds it full
	// gets a 429 result. Default 10,000.
	PendingCap int
	// ShedLag is the scheduler's own admission control (shed.go): an
	// arrival read more than ShedLag after it arrived at the ingress is
	// answered at once with a result of reason overloaded (429 with
	// Retry-After) instead of being placed, so that when the scheduler is
	// the bottleneck the excess is refused while its callers still wait
	// rather than queueing in Kafka until their timeouts. Not while the
	// workers topic cannot be read or no worker is in rotation, nor for a
	// few seconds after partitions are assigned (a takeover's backlog is
	// served). Zero or negative: off, the default (DefaultShedLag: it
	// lowered goodput where the scheduler was the bottleneck, see there).
	ShedLag time.Duration
	// DefaultCapacity is the in-flight limit of a worker whose heartbeat
	// says capacity 0. Default 0: unlimited.
	DefaultCapacity int
	// HeartbeatTimeout is how long a worker may stay silent before it
	// leaves the rotation. Default 3s.
	HeartbeatTimeout time.Duration
	// DefaultTimeout is the execution timeout of an arrival without a
	// deadline (it also bounds how long such an arrival may wait in the
	// pending queue). Default 5m.
	DefaultTimeout time.Duration
	// TimeoutMargin is added to an assignment's deadline before the
	// scheduler gives up on its completion, publishes a 504 result and
	// frees the slot; it leaves the bridge time to report its own timeout.
	// Default 2s.
	TimeoutMargin time.Duration
	// Tick is how often deadlines, assignment timeouts and heartbeats are
	// checked; it is the resolution of every timeout. Default 100ms.
	Tick time.Duration
	// MaxAttempts is how many times an assignment whose produce fails is
	// tried before the arrival gets a 503 result. Default 3.
	MaxAttempts int
	// RecentIDs is how many finished activation ids are remembered to
	// recognise a re-delivered arrival. Default 100,000 (about 5 MB).
	RecentIDs int
	// RevokeFlush bounds how long a rebalance waits for in-flight produces
	// to be acknowledged before letting partitions go. Default 5s.
	RevokeFlush time.Duration
	// LagInterval is how often the consumer-group lag metric is sampled.
	// Default 5s; negative disables sampling.
	LagInterval time.Duration
	// Linger is the producer's linger (how long an assignment waits for
	// others to share its produce request). Default 0: lowest latency.
	// Measured on 2 cores with Apache Kafka (docs/BENCHMARKS.md), 1-2ms
	// did not raise the decision rate or lower p99 beyond run-to-run
	// noise, and added up to the linger to p50 at low rates, so it stays
	// off; the broker's cost per request is better cut on the side that
	// produces most (bridges, ingress).
	Linger time.Duration
	// SessionTimeout is the consumer-group session timeout: how long a
	// crashed replica holds its partitions. Default 2s, so they move to a
	// survivor within about 2.5s (the heartbeat is a quarter of it): the
	// old 10s left 406 requests waiting up to 9.9s after a replica was
	// killed (issue 13). Raised to the broker's
	// group.min.session.timeout.ms when that is higher (Kafka's default is
	// 6s; scripts/kafka.sh and the embedded broker allow 1s).
	SessionTimeout time.Duration
	// StuckAfter is how long a partition of arrivals or worker-events may
	// hold unfinished records without finishing any before /readyz says
	// the replica cannot make progress (stuck_partitions counts them). An
	// arrival is finished once its assignment or answer is acknowledged, so
	// a queue that waits this long for capacity shows here too. Default
	// consumer.DefaultStuckAfter (30s); negative disables the check.
	StuckAfter time.Duration
	// Clock returns the current time. Default time.Now. Tests may move it.
	Clock func() time.Time
}

// Defaults of Config's PendingCap, HeartbeatTimeout and DefaultTimeout.
const (
	DefaultPendingCap       = 10000
	DefaultHeartbeatTimeout = 3 * time.Second
	DefaultArrivalTimeout   = 5 * time.Minute
)

// DefaultPolicy is Config.Policy's default: pull-wait, which on the Hiku
// workload cut cold starts 33-49% against pull at equal mean latency
// (docs/EVALUATION.md, three scenarios, three seeds).
const DefaultPolicy = policy.NamePullWait

// DefaultSessionTimeout is Config.SessionTimeout's default.
const DefaultSessionTimeout = 2 * time.Second

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("scheduler: invalid config")

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Topics = c.Topics.WithDefaults()
	if c.ID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "scheduler"
		}
		c.ID = topics.SanitizeID(h + "-" + strconv.Itoa(os.Getpid()))
	}
	if c.Policy == "" {
		c.Policy = DefaultPolicy
	}
	if c.Pending == "" {
		c.Pending = policy.DisciplineFIFO
	}
	if c.PendingCap == 0 {
		c.PendingCap = DefaultPendingCap
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = DefaultArrivalTimeout
	}
	if c.TimeoutMargin == 0 {
		c.TimeoutMargin = 2 * time.Second
	}
	if c.Tick == 0 {
		c.Tick = 100 * time.Millisecond
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.RecentIDs == 0 {
		c.RecentIDs = 100000
	}
	if c.RevokeFlush == 0 {
		c.RevokeFlush = 5 * time.Second
	}
	if c.LagInterval == 0 {
		c.LagInterval = 5 * time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.StuckAfter == 0 {
		c.StuckAfter = consumer.DefaultStuckAfter
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c = c.WithDefaults()
	if err := c.Topics.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !topics.ValidID(c.ID) {
		return fmt.Errorf("%w: id %q: want 1-128 of letters, digits, '_', '.', '-'", ErrConfig, c.ID)
	}
	if _, ok := policy.Canonical(c.Policy); !ok {
		return fmt.Errorf("%w: policy %q: known policies are %v", ErrConfig, c.Policy, policy.Names())
	}
	if err := c.PolicyConfig.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch {
	case c.PendingCap < 0:
		return fmt.Errorf("%w: pending cap %d", ErrConfig, c.PendingCap)
	case c.DefaultCapacity < 0:
		return fmt.Errorf("%w: default capacity %d", ErrConfig, c.DefaultCapacity)
	case c.HeartbeatTimeout < 0 || c.DefaultTimeout < 0 || c.TimeoutMargin < 0 || c.Tick < 0 ||
		c.RevokeFlush < 0 || c.Linger < 0 || c.SessionTimeout < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	case c.Tick < time.Millisecond:
		return fmt.Errorf("%w: tick %v under 1ms", ErrConfig, c.Tick)
	case c.MaxAttempts < 1:
		return fmt.Errorf("%w: max attempts %d", ErrConfig, c.MaxAttempts)
	case c.RecentIDs < 0:
		return fmt.Errorf("%w: recent ids %d", ErrConfig, c.RecentIDs)
	}
	return nil
}
