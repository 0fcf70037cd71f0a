package owbridge

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
	"github.com/rs/zerolog"
)

// Config configures a Bridge. The zero value of every optional field
// selects its default.
type Config struct {
	// Kafka is how the bridge reaches the Kafka cluster both OpenWhisk and
	// pullsched use (seed brokers required; TLS, SASL, extra franz-go
	// options). Each client's id defaults to "<ID>-<role>".
	Kafka kafkaconn.Config
	// Topics names and creates pullsched's topics.
	Topics topics.Config
	// Listen is the host:port of the HTTP server (/metrics, /healthz,
	// /readyz). Default "": no server.
	Listen string
	// Logger receives the bridge's logs. Default: discard.
	Logger zerolog.Logger

	// ControllerPrefix is the topic prefix the OpenWhisk controllers were
	// given (whisk.kafka.topics.prefix). Required, and different from
	// InvokerPrefix: it is what separates the controllers from the
	// invokers.
	ControllerPrefix string
	// InvokerPrefix is the topic prefix of the invokers. Default "" (the
	// stock setting).
	InvokerPrefix string
	// Controllers are the controller instance ids (the C of completed<C>)
	// whose acknowledgements the bridge forwards. Default ["0"].
	Controllers []string

	// ID names the bridge: the bridge field of the worker records it
	// writes and the reply address of its arrivals (results.<ID>). Default
	// "openwhisk-<hostname>".
	ID string
	// Group prefixes the consumer groups of the bridge's own reads
	// (<Group>.activations, .acks, .health, .results); none is ever one of
	// OpenWhisk's. Default "pullsched-openwhisk".
	Group string

	// FacadeInstance is the instance number of the virtual invoker the
	// controllers see. Default 0.
	FacadeInstance int
	// FacadeUserMemory is the userMemory the virtual invoker announces;
	// large, so that the controllers' memory semaphores never refuse it.
	// Default 1 TiB.
	FacadeUserMemory ByteSize
	// PingInterval is how often the virtual invoker pings. Default 1s,
	// as an invoker does.
	PingInterval time.Duration

	// DefaultMemoryMB is an action's memory until an acknowledgement told
	// its limits. Default 256 (OpenWhisk's standard memory limit).
	DefaultMemoryMB int
	// DefaultTimeout is an action's time limit until an acknowledgement
	// told its limits. Default 60s (OpenWhisk's standard time limit).
	DefaultTimeout time.Duration
	// ForcedAckFactor and ForcedAckAddon are the controllers'
	// loadbalancer timeout-factor and timeout-addon: a controller forces
	// an ack max(time limit, 60s) × factor + addon after sending. Defaults
	// 2 and 1m, OpenWhisk's.
	ForcedAckFactor int
	ForcedAckAddon  time.Duration
	// AnswerMargin is how long before the controller's forced ack an
	// activation's deadline falls, so pullsched's timeout answer reaches
	// the controller first. Default 10s.
	AnswerMargin time.Duration

	// SlotMB is the memory one activation counts against an invoker's
	// userMemory: an invoker's capacity is its userMemory / SlotMB (at
	// least 1). Default 256.
	SlotMB int
	// HeartbeatInterval is how often each live invoker's worker record is
	// written. Default 1s.
	HeartbeatInterval time.Duration
	// InvokerTimeout is how long an invoker may go without pinging before
	// its heartbeats stop (the scheduler then takes it out of rotation).
	// Default 3s.
	InvokerTimeout time.Duration
	// UnhealthyErrors is how many of an invoker's last 10
	// acknowledgements may be system errors before its heartbeats say
	// unhealthy; OpenWhisk's supervision uses 3. Default 3.
	UnhealthyErrors int
	// ErrorMemory is how long a system error counts: an unhealthy invoker
	// gets no work, so its errors must age out for it to be tried again
	// (OpenWhisk sends an unhealthy invoker test actions instead). Default
	// 1m.
	ErrorMemory time.Duration
	// NoInferredEvictions turns off the evictions the bridge infers from
	// a model of each invoker's container pool (see shadowPool) and
	// publishes on worker-events: OpenWhisk invokers announce none, and
	// without them pull's idle entries outlive their containers. Default
	// false: inferred.
	NoInferredEvictions bool
	// StuckAfter is how long a partition of one of the bridge's consumers
	// may hold unfinished records without finishing any before /readyz
	// fails naming it. Default consumer.DefaultStuckAfter (30s); negative
	// disables the check.
	StuckAfter time.Duration
	// DedupeWindow is how long an answered activation is remembered, to
	// recognise its re-delivered assignment or acks (about 500 bytes
	// each). Default 2m.
	DedupeWindow time.Duration
	// BookGrace is how long an unanswered activation is remembered after
	// its deadline. Default 5m.
	BookGrace time.Duration
}

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("owbridge: invalid config")

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if len(c.Controllers) == 0 {
		c.Controllers = []string{"0"}
	}
	if c.ID == "" {
		h, _ := os.Hostname()
		c.ID = topics.SanitizeID("openwhisk-" + h)
	}
	if c.Group == "" {
		c.Group = "pullsched-openwhisk"
	}
	if c.FacadeUserMemory == 0 {
		c.FacadeUserMemory = 1024 * GB
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PingInterval, time.Second)
	def(&c.DefaultTimeout, 60*time.Second)
	def(&c.ForcedAckAddon, time.Minute)
	def(&c.AnswerMargin, 10*time.Second)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.InvokerTimeout, 3*time.Second)
	def(&c.BookGrace, 5*time.Minute)
	def(&c.DedupeWindow, 2*time.Minute)
	def(&c.ErrorMemory, time.Minute)
	def(&c.StuckAfter, consumer.DefaultStuckAfter)
	if c.DefaultMemoryMB == 0 {
		c.DefaultMemoryMB = 256
	}
	if c.ForcedAckFactor == 0 {
		c.ForcedAckFactor = 2
	}
	if c.SlotMB == 0 {
		c.SlotMB = 256
	}
	if c.UnhealthyErrors == 0 {
		c.UnhealthyErrors = 3
	}
	return c
}

// Validate reports a setting that cannot work; its errors wrap ErrConfig.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.ControllerPrefix == "" {
		return fmt.Errorf("%w: no controller prefix: the controllers must be given a whisk.kafka.topics.prefix of their own", ErrConfig)
	}
	if c.ControllerPrefix == c.InvokerPrefix {
		return fmt.Errorf("%w: controller prefix %q equals the invoker prefix: nothing would separate them", ErrConfig, c.ControllerPrefix)
	}
	if err := c.Topics.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.FacadeInstance < 0 {
		return fmt.Errorf("%w: negative facade instance", ErrConfig)
	}
	c = c.WithDefaults()
	for _, ctl := range c.Controllers {
		if !topics.ValidID(ctl) {
			return fmt.Errorf("%w: controller id %q is not a topic name part", ErrConfig, ctl)
		}
	}
	if !topics.ValidID(c.ID) {
		return fmt.Errorf("%w: id %q: want 1-128 of letters, digits, '_', '.', '-'", ErrConfig, c.ID)
	}
	switch {
	case c.DefaultMemoryMB < 0 || c.SlotMB < 0 || c.ForcedAckFactor < 0 || c.UnhealthyErrors < 0 || c.FacadeUserMemory < 0:
		return fmt.Errorf("%w: negative size or count", ErrConfig)
	case c.PingInterval < 0 || c.DefaultTimeout < 0 || c.ForcedAckAddon < 0 || c.AnswerMargin < 0 ||
		c.HeartbeatInterval < 0 || c.InvokerTimeout < 0 || c.BookGrace < 0 || c.ErrorMemory < 0 || c.DedupeWindow < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	return nil
}

// forcedAckAfter is when, after sending, a controller forces the ack of
// an action with time limit limit.
func (c Config) forcedAckAfter(limit time.Duration) time.Duration {
	return max(limit, 60*time.Second)*time.Duration(c.ForcedAckFactor) + c.ForcedAckAddon
}

// topic names of the OpenWhisk side.
func (c Config) facadeTopic() string       { return c.ControllerPrefix + "invoker" + itoa(c.FacadeInstance) }
func (c Config) controllerHealth() string  { return c.ControllerPrefix + "health" }
func (c Config) invokerHealth() string     { return c.InvokerPrefix + "health" }
func (c Config) invokerTopic(n int) string { return c.InvokerPrefix + "invoker" + itoa(n) }
func (c Config) acksTopic(ctl string) string {
	return c.InvokerPrefix + "completed" + ctl
}
func (c Config) controllerAcks(ctl string) string { return c.ControllerPrefix + "completed" + ctl }
