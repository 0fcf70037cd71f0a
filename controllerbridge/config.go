package controllerbridge

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// DefaultListen is the address the controller listens on when Config.Listen
// is empty.
const DefaultListen = "127.0.0.1:9020"

// MinTimeout is the smallest ?timeout= accepted (400 below): less cannot
// even cover publishing the arrival.
const MinTimeout = time.Millisecond

// DefaultMaxBody is the default Config.MaxBody: the largest payload one
// arrival record can carry, topics.MaxMessageBytes (the producer's record
// limit and the topics' max.message.bytes) less the most an arrival's
// envelope can add (ArrivalOverhead). Just under 1 MiB.
var DefaultMaxBody = int64(topics.MaxMessageBytes - ArrivalOverhead)

// ArrivalOverhead is the most bytes an arrival record adds to its payload:
// the record batch, the key (the function name) and the JSON envelope, with
// every field at its longest.
var ArrivalOverhead = arrivalOverhead()

func arrivalOverhead() int {
	const maxName = 128 // function names and controller ids
	long := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -(23*3600+59*60)))
	a := &topics.Arrival{
		ID: topics.NewID(), Function: strings.Repeat("f", maxName), Payload: []byte("0"),
		Reply: strings.Repeat("c", maxName), Class: math.MinInt, MemoryMB: math.MaxInt,
		Arrived: long, Deadline: long,
	}
	const margin = 64 // for fields added later before this is updated
	r, err := producer.Record("t", a)
	if err != nil { // cannot happen: a is valid; stay on the safe side anyway
		return 4096
	}
	return producer.BatchBytes(r) - len(a.Payload) + margin
}

// DefaultMaxActivationBytes is the default Config.MaxActivationBytes: 64 MiB.
const DefaultMaxActivationBytes = 64 << 20

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("controllerbridge: invalid config")

// Config configures a Controller. Zero fields take the defaults documented
// on each.
type Config struct {
	// Kafka is how the controller reaches the brokers: seed brokers
	// (required), TLS, SASL and extra franz-go options, shared by its
	// producer and readers. Its ClientID defaults to "pullsched-<ID>"
	// (with -results and -workers for the readers).
	Kafka kafkaconn.Config
	// Topics names and creates the topics (prefix, partitions, retention).
	// Default: topics.Config{} with its own defaults.
	Topics topics.Config
	// Listen is the host:port of the HTTP server. Default DefaultListen
	// (127.0.0.1:9020); "127.0.0.1:0" picks a free port (read Addr).
	Listen string
	// Logger receives the controller's log lines. Default: none.
	Logger zerolog.Logger

	// ID is this controller's id: results come back on results.<ID>, so two
	// controllers sharing a broker need different ids. It must pass
	// topics.ValidID. Default "controller-<hostname>" (characters a topic
	// name cannot hold replaced with '-').
	ID string
	// AdminToken is the bearer token the admin API requires. Default "":
	// the admin endpoints answer 503 "admin API disabled".
	AdminToken string
	// MaxBody bounds a request body in bytes; larger bodies get 413.
	// Default DefaultMaxBody, the largest payload one arrival record can
	// carry. A larger value lets more through the body check, but a request
	// whose arrival record would still be too large gets 413 all the same.
	MaxBody int64
	// DefaultTimeout is the deadline of a request without ?timeout=.
	// Default 60s.
	DefaultTimeout time.Duration
	// MaxTimeout is the largest ?timeout= accepted (400 beyond). Default 15m.
	MaxTimeout time.Duration
	// ResultMargin is how long past its deadline an activation's result is
	// still awaited for GET /activations/<id>. A blocking request itself is
	// answered 504 at its deadline, never after it (issue 13: a result
	// late by the scheduler's 2s timeout margin reached clients up to 5s
	// past their deadline). Default 5s.
	ResultMargin time.Duration
	// ActivationTTL is how long a result is kept for GET /activations/<id>
	// after it came (and how long past its deadline a pending activation is
	// remembered). Default 10m.
	ActivationTTL time.Duration
	// MaxActivations bounds the activations remembered for
	// GET /activations/<id>; beyond it the one closest to expiry is
	// forgotten. Default 100,000.
	MaxActivations int
	// MaxActivationBytes bounds, in bytes, the activations remembered for
	// GET /activations/<id> and Idempotency-Key retries: results (body,
	// error and the rest) plus about 256 B per activation. Beyond it the
	// activations closest to expiry (for results, the oldest) are forgotten
	// first. A blocking request without an Idempotency-Key drops its result
	// once answered, so this holds non-blocking results, results whose
	// request gave up, and keyed ones. Default DefaultMaxActivationBytes
	// (64 MiB): the controller's memory grows by up to about this much.
	MaxActivationBytes int64
	// MaxWaiting bounds the blocking requests waiting for a result at once;
	// beyond it /run answers 429 with Retry-After. Default 10,000.
	MaxWaiting int
	// RetryAfter is the Retry-After this controller sends with a 429 (whole
	// seconds, at least 1). Default 1s.
	RetryAfter time.Duration
	// AdmissionTarget is how long the chain may keep every request of an
	// AdmissionInterval waiting (their time from arrival to result less
	// the function's duration) before /run sheds load: it then limits the
	// requests waiting at once and answers the rest 429 with Retry-After at
	// once, instead of letting them wait past their timeout (see
	// admission). Default DefaultAdmissionTarget (500ms, chosen by
	// measurement: docs/BENCHMARKS.md); negative: no admission control
	// beyond MaxWaiting. Lower sheds sooner and keeps admitted requests
	// faster under overload, at the risk of shedding bursts the chain
	// would have absorbed.
	AdmissionTarget time.Duration
	// AdmissionInterval is the window the admission rule takes the smallest
	// added time over. Default DefaultAdmissionInterval (100ms).
	AdmissionInterval time.Duration
	// PublishTimeout bounds publishing one arrival (broker acknowledgement
	// included); a failure answers 503. Default 10s.
	PublishTimeout time.Duration
	// Linger is how long the arrivals producer lets a batch wait for more
	// records (producer.Config.Linger). Default 0: every arrival is sent at
	// once, the lowest latency at any rate. A few hundred microseconds put
	// several arrivals in one produce request when requests come faster
	// than that, saving the controller and the broker a request and its
	// answer each, but every arrival then waits up to Linger, also at low
	// rates (docs/BENCHMARKS.md, "Controller request path").
	Linger time.Duration
	// HeartbeatTimeout is how old a worker's last record may be before
	// GET /admin/workers and /status call it stale. Default 3s, the
	// scheduler's.
	HeartbeatTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound an HTTP
	// connection's phases. Defaults 5s, 30s, 2m. The write timeout is derived:
	// MaxTimeout + ResultMargin + 30s, so a long blocking /run is never cut.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// DrainTimeout is how long, on shutdown, requests already waiting for a
	// result may still get it; the rest are answered 503. Default 10s.
	DrainTimeout time.Duration
}

// Defaults of Config's MaxTimeout and MaxWaiting.
const (
	DefaultMaxTimeout = 15 * time.Minute
	DefaultMaxWaiting = 10_000
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Topics = c.Topics.WithDefaults()
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ID == "" {
		c.ID = DefaultID()
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = 60 * time.Second
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.ResultMargin == 0 {
		c.ResultMargin = 5 * time.Second
	}
	if c.ActivationTTL == 0 {
		c.ActivationTTL = 10 * time.Minute
	}
	if c.MaxActivations == 0 {
		c.MaxActivations = 100_000
	}
	if c.MaxActivationBytes == 0 {
		c.MaxActivationBytes = DefaultMaxActivationBytes
	}
	if c.MaxWaiting == 0 {
		c.MaxWaiting = DefaultMaxWaiting
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
	if c.AdmissionTarget == 0 {
		c.AdmissionTarget = DefaultAdmissionTarget
	}
	if c.AdmissionInterval == 0 {
		c.AdmissionInterval = DefaultAdmissionInterval
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 3 * time.Second
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
	return c
}

// Validate reports settings that cannot work, after defaults are applied.
// Errors wrap ErrConfig.
func (c Config) Validate() error {
	c = c.WithDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Topics.Validate(); err != nil {
		return fmt.Errorf("%w: topics: %w", ErrConfig, err)
	}
	if err := topics.CheckID("controller", c.ID); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch {
	case c.MaxBody < 0:
		return bad("negative max body %d", c.MaxBody)
	case c.DefaultTimeout < 0 || c.MaxTimeout < 0 || c.ResultMargin < 0 || c.ActivationTTL < 0 ||
		c.RetryAfter < 0 || c.PublishTimeout < 0 || c.Linger < 0 || c.HeartbeatTimeout < 0 || c.ReadHeaderTimeout < 0 ||
		c.ReadTimeout < 0 || c.IdleTimeout < 0 || c.DrainTimeout < 0 || c.AdmissionInterval < 0:
		return bad("negative duration")
	case c.DefaultTimeout > c.MaxTimeout:
		return bad("default timeout %s exceeds max timeout %s", c.DefaultTimeout, c.MaxTimeout)
	case c.MaxActivations < 0 || c.MaxWaiting < 0 || c.MaxActivationBytes < 0:
		return bad("negative bound")
	}
	return nil
}

// DefaultID is the controller id used when Config.ID is empty:
// "controller-" and the host name, with characters a topic name cannot hold
// replaced by '-'.
func DefaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "local"
	}
	return topics.SanitizeID("controller-" + host)
}

// writeTimeout is the HTTP write timeout: long enough for the longest
// blocking request.
func (c Config) writeTimeout() time.Duration {
	return c.MaxTimeout + c.ResultMargin + 30*time.Second
}

// conn is the Kafka connection of one of the controller's clients: the
// configured one, named "pullsched-<ID>"+role unless the operator fixed a
// client id.
func (c *Controller) conn(role string) kafkaconn.Config {
	return c.cfg.Kafka.WithClientID("pullsched-" + c.cfg.ID + role)
}
