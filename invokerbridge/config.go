package invokerbridge

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
)

// Defaults of Config's HeartbeatInterval, CallTimeout and DrainTimeout.
const (
	DefaultHeartbeatInterval = time.Second
	DefaultCallTimeout       = 5 * time.Minute
	DefaultDrainTimeout      = 30 * time.Second
)

// Defaults of the predecessor read (see Config.PredecessorWindow).
const (
	DefaultPredecessorWindow   = 5 * time.Minute
	DefaultPredecessorMaxBytes = 64 << 20
	DefaultPredecessorTimeout  = 10 * time.Second
)

// Config configures a Bridge. The zero value of every optional field selects
// its default.
type Config struct {
	// Kafka is how the bridge reaches the brokers: seed brokers
	// (required), TLS, SASL and extra franz-go options, shared by all its
	// clients. Its ClientID defaults to ID (ID-workers, ID-predecessor for
	// the readers).
	Kafka kafkaconn.Config
	// Topics names and creates the topics (prefix, partitions...).
	Topics topics.Config
	// Listen is the host:port of the HTTP server (eviction notices at
	// POST /destroySandbox/<fn>, /metrics, /healthz, /readyz). Default "":
	// no server, so no eviction notices are accepted.
	Listen string
	// Logger receives the bridge's logs. Default: the zero logger, which
	// discards.
	Logger zerolog.Logger

	// ID names this bridge in worker records (their bridge field). Default
	// "invoker-<hostname>" with characters outside [A-Za-z0-9_.-] replaced.
	ID string

	// WorkerURL is the OpenLambda base URL of the worker this sidecar serves
	// (e.g. http://127.0.0.1:5000). Required unless Pool.
	WorkerURL string
	// WorkerID is the worker's id, which names its assignment topic
	// invoker.<WorkerID>. Default: the host:port of WorkerURL with ':'
	// replaced by '-', the id the admin API gives a worker of that URL.
	WorkerID string
	// Advertise is the host:port the worker puts in its eviction notices
	// ({"host": "<Advertise>"}); a notice naming another host is refused
	// with 404. Default: the host:port of WorkerURL (the port defaults to
	// 80 or 443 by scheme). Sidecar mode only: in pool mode a notice's host
	// is matched against the host:port of each served worker's URL.
	Advertise string

	// Pool serves every admin-added worker of the workers topic instead of
	// one worker: a runner per worker starts when the admin API adds it and
	// finishes its calls and stops when it is removed. Default false
	// (sidecar).
	Pool bool

	// Capacity is the in-flight limit heartbeats advertise to the
	// scheduler, which never places more than that on the worker at once,
	// and how many calls the bridge runs at once (the assignment partition
	// pauses while they are all taken).
	//
	// Default 0 (also CapacityUnlimited, -1): no limit advertised, as
	// Hiku's proxy has none, and at most MaxConcurrentCalls calls at once.
	// Chosen by measurement on the Hiku workload (docs/EVALUATION.md): a
	// limit only moves the wait for a worker's memory or cores from the
	// worker into the scheduler, and costs latency there — the old default
	// of 16 cost 7-10% of mean latency with 16 GiB workers, a limit equal
	// to the worker's sandbox slots 2-35% depending on memory. Set one for
	// a worker that must not be given more than N calls at once.
	Capacity int
	// HeartbeatInterval is how often a worker record is written. Default
	// 1s; the scheduler drops a worker silent for its heartbeat timeout
	// (3s by default), so keep this well under it.
	HeartbeatInterval time.Duration
	// HealthTimeout bounds the GET /status health check made for each
	// heartbeat. Default: HeartbeatInterval/2, at most 1s.
	HealthTimeout time.Duration
	// CallTimeout bounds a call whose assignment carries no deadline.
	// Default 5m.
	CallTimeout time.Duration
	// DrainTimeout bounds how long shutdown (or a pool worker's removal)
	// waits for calls in flight before cancelling them; a cancelled call is
	// answered 502. Default 30s.
	DrainTimeout time.Duration
	// PublishTimeout bounds how long publishing a call's completion and
	// result may retry; a completion not published by then is given up
	// (counted in unacknowledged_total) and its assignment finished, not
	// run again. Default 30s.
	PublishTimeout time.Duration
	// StuckAfter is how long a worker's assignment partition may hold
	// records that are not running (waiting for a slot, or never finished)
	// without finishing any before /readyz says the bridge cannot make
	// progress (stuck_partitions counts them). A long call alone does not
	// count; assignments queued behind calls that all outlast it do.
	// Default consumer.DefaultStuckAfter (30s); negative disables the check.
	StuckAfter time.Duration
	// DedupeSize is how many finished activation ids are remembered to
	// drop re-delivered assignments (about 100 bytes each). Default 100,000.
	DedupeSize int
	// PredecessorWindow is how far back the bridge reads worker-events,
	// when it is given a worker's assignment partition, for the
	// completions a predecessor (a crashed sidecar, the previous owner of
	// the partition) published for that worker: their assignments were
	// answered but maybe not committed, so when they are re-delivered they
	// are finished without calling the worker (counted in
	// duplicates_total and predecessor_duplicates_total). The read blocks
	// the partition's first assignments; it costs reading every worker's
	// events of the window. Default 5m; negative disables it.
	PredecessorWindow time.Duration
	// PredecessorMaxBytes bounds the record values read for
	// PredecessorWindow; past it the read stops with what it has (the
	// oldest part of the window). Default 64 MiB.
	PredecessorMaxBytes int64
	// PredecessorTimeout bounds the read for PredecessorWindow; past it
	// the partition is served with what was read. Default 10s.
	PredecessorTimeout time.Duration
	// MaxAnswerBytes bounds a worker's answer body; a longer answer is
	// answered 502 (a Kafka record is limited to about 1 MB). Default
	// 512 KiB.
	MaxAnswerBytes int64
	// MaxIdleConnsPerHost is how many idle keep-alive connections to each
	// worker the shared HTTP transport keeps. Default: Capacity when
	// explicit, else 256.
	MaxIdleConnsPerHost int
	// Transport makes the calls to workers. Default: a shared pooled
	// transport with a 5s dial timeout and MaxIdleConnsPerHost.
	Transport http.RoundTripper

	// SessionTimeout is the consumer group session timeout of the
	// assignment consumers. Default 10s (the consumer's default).
	SessionTimeout time.Duration
}

// CapacityUnlimited advertises no in-flight limit; 0 does the same.
const CapacityUnlimited = -1

// MaxConcurrentCalls bounds the calls a bridge runs at once on one worker
// when Capacity sets no limit.
const MaxConcurrentCalls = 1024

// concurrency is how many calls run at once on one worker.
func (c Config) concurrency() int {
	if c.Capacity > 0 {
		return c.Capacity
	}
	return MaxConcurrentCalls
}

// ErrConfig is wrapped by every configuration error New returns.
var ErrConfig = errors.New("invokerbridge: invalid config")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

// WithDefaults returns c with every zero field set to its default; a
// sidecar's worker id and advertised address come from its worker URL.
func (c Config) WithDefaults() Config {
	if c.ID == "" {
		h, _ := os.Hostname()
		c.ID = topics.SanitizeID("invoker-" + h)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = min(c.HeartbeatInterval/2, time.Second)
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.StuckAfter == 0 {
		c.StuckAfter = consumer.DefaultStuckAfter
	}
	if c.DedupeSize == 0 {
		c.DedupeSize = 100000
	}
	if c.PredecessorWindow == 0 {
		c.PredecessorWindow = DefaultPredecessorWindow
	}
	if c.PredecessorMaxBytes == 0 {
		c.PredecessorMaxBytes = DefaultPredecessorMaxBytes
	}
	if c.PredecessorTimeout == 0 {
		c.PredecessorTimeout = DefaultPredecessorTimeout
	}
	if c.MaxAnswerBytes == 0 {
		c.MaxAnswerBytes = 512 << 10
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = min(c.concurrency(), 256)
	}
	if !c.Pool && c.WorkerURL != "" {
		if c.WorkerID == "" {
			c.WorkerID, _ = topics.WorkerIDFromURL(c.WorkerURL) // Validate reports a bad URL
		}
		if hp, err := topics.WorkerHostPort(c.WorkerURL); err == nil && c.Advertise == "" {
			c.Advertise = hp
		}
	}
	c.Advertise = strings.ToLower(c.Advertise)
	return c
}

// Validate reports a setting that cannot work; its errors wrap ErrConfig.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Topics.Validate(); err != nil {
		return fmt.Errorf("%w: topics: %w", ErrConfig, err)
	}
	given := c
	c = c.WithDefaults()
	switch {
	case c.Capacity < CapacityUnlimited:
		return bad("capacity %d: want a positive limit, or 0 or %d for none", c.Capacity, CapacityUnlimited)
	case c.HeartbeatInterval < 10*time.Millisecond:
		return bad("heartbeat interval %v under 10ms", c.HeartbeatInterval)
	case c.HealthTimeout < 0 || c.CallTimeout < 0 || c.DrainTimeout < 0 || c.PublishTimeout < 0 || c.SessionTimeout < 0 ||
		c.PredecessorTimeout < 0:
		return bad("negative timeout")
	case c.DedupeSize < 0 || c.MaxAnswerBytes < 0 || c.MaxIdleConnsPerHost < 0 || c.PredecessorMaxBytes < 0:
		return bad("negative size")
	case !topics.ValidID(c.ID):
		return bad("bridge id %q: want 1-128 of letters, digits, '_', '.', '-'", c.ID)
	}
	if c.Pool {
		if given.WorkerURL != "" || given.WorkerID != "" || given.Advertise != "" {
			return bad("pool mode serves the workers of the workers topic: no worker url, id or advertise")
		}
		return nil
	}
	if c.WorkerURL == "" {
		return bad("no worker url (or set pool mode)")
	}
	if _, err := topics.WorkerHostPort(c.WorkerURL); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if given.WorkerID == "" {
		if _, err := topics.WorkerIDFromURL(c.WorkerURL); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if err := topics.CheckID("worker", c.WorkerID); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
		return bad("advertise %q is not host:port", c.Advertise)
	}
	return nil
}

// conn is the Kafka connection of one of the bridge's clients: the
// configured one, named ID+role unless the operator fixed a client id.
func (b *Bridge) conn(role string) kafkaconn.Config {
	return b.cfg.Kafka.WithClientID(b.cfg.ID + role)
}
