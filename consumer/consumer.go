package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/logging"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// Dead-letter headers: why a record was dead-lettered and where it came from.
const (
	HeaderError     = "pullsched-error"
	HeaderTopic     = "pullsched-topic"
	HeaderPartition = "pullsched-partition"
	HeaderOffset    = "pullsched-offset"
)

// Config configures a Consumer.
type Config struct {
	// Kafka is how to reach the brokers (seed brokers required; TLS, SASL,
	// extra franz-go options appended last). Its ClientID defaults to
	// "pullsched".
	Kafka kafkaconn.Config
	// Group is the consumer group. Required.
	Group string
	// Topics to consume. Required.
	Topics []string
	// Decode turns a record into an event. Required. An error sends the
	// record to the dead-letter topic.
	Decode func(topic string, value []byte) (topics.Event, error)
	// DLQ is the dead-letter topic. Required, with Producer.
	DLQ string
	// Producer writes dead letters. Required.
	Producer *producer.Producer
	// MaxOutstanding is how many unfinished records a partition may have
	// before it is paused; it resumes at half. Default 10,000.
	MaxOutstanding int
	// MaxPollRecords bounds one batch handed to the handler. Default 1,000.
	MaxPollRecords int
	// CommitInterval is how often finished offsets are committed (they are
	// also committed on revoke and close). Default 1s.
	CommitInterval time.Duration
	// SessionTimeout is the group session timeout. Default 10s: a crashed
	// replica's partitions move after at most this long.
	SessionTimeout time.Duration
	// InstanceID makes this member static (KIP-345): a member that restarts
	// with the same id takes its partitions back at once instead of waiting
	// for the old member's session to end; it does not leave the group on
	// close. Use it where one process at a time serves the group (a
	// worker's sidecar). Default none: a dynamic member.
	InstanceID string
	// HeartbeatInterval is the group heartbeat interval. Default 1s.
	HeartbeatInterval time.Duration
	// StartAtEnd makes a group with no committed offsets start at the end of
	// the topics instead of the start. Default false: read from the start,
	// so nothing produced before the first replica started is lost.
	StartAtEnd bool
	// Logger receives warnings. Default: none.
	Logger zerolog.Logger
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	switch {
	case c.Group == "":
		return errors.New("consumer: no group")
	case len(c.Topics) == 0:
		return errors.New("consumer: no topics")
	case c.Decode == nil:
		return errors.New("consumer: no decoder")
	case c.DLQ == "" || c.Producer == nil:
		return errors.New("consumer: no dead-letter topic or producer")
	case c.MaxOutstanding < 0 || c.MaxPollRecords < 0 || c.CommitInterval < 0 || (c.CommitInterval > 0 && c.CommitInterval < 100*time.Millisecond):
		return errors.New("consumer: negative limit, or commit interval under 100ms")
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Kafka = c.Kafka.WithClientID("pullsched")
	if c.MaxOutstanding == 0 {
		c.MaxOutstanding = 10000
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = 1000
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	return c
}

// Handler receives what the consumer reads. Handle and the rebalance
// callbacks are never called concurrently with each other.
type Handler interface {
	// Handle is given a batch of decoded records, in partition order. The
	// group cannot rebalance until it returns. Each delivery's Done must be
	// called once its work is finished, from any goroutine, at any later
	// time; until then its offset is not committed.
	Handle(ctx context.Context, batch []*Delivery)
	// Assigned is called when partitions are given to this member.
	Assigned(ctx context.Context, parts map[string][]int32)
	// Revoked is called before partitions leave this member (or after they
	// were lost). Deliveries of those partitions finished after it returns
	// are not committed by this member.
	Revoked(ctx context.Context, parts map[string][]int32)
}

// Delivery is one decoded record.
type Delivery struct {
	Record *kgo.Record
	Event  topics.Event
	c      *Consumer
	t      *tracker
}

// Done says the work this record carries is finished (its effects are
// durable), so its offset may be committed. Calling it twice, or after the
// partition was revoked, does nothing.
func (d *Delivery) Done() { d.c.finish(d.t, d.Record) }

type tp struct {
	topic string
	part  int32
}

// Consumer is a group consumer. Create it with New and run it with Run.
type Consumer struct {
	cfg Config
	h   Handler
	cl  *kgo.Client
	log zerolog.Logger

	mu        sync.Mutex
	parts     map[tp]*tracker
	paused    map[tp]bool
	dlqd      int64
	dlqRefs   int64
	dlqFailed int64
	decoded   int64

	now func() time.Time // the clock of progress times; tests replace it
}

// New creates a consumer; it joins the group when Run starts.
func New(cfg Config, h Handler) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("consumer: nil handler")
	}
	cfg = cfg.WithDefaults()
	c := &Consumer{cfg: cfg, h: h, log: cfg.Logger, parts: map[tp]*tracker{}, paused: map[tp]bool{}, now: time.Now}
	reset := kgo.NewOffset().AtStart()
	if cfg.StartAtEnd {
		reset = kgo.NewOffset().AtEnd()
	}
	conn, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(cfg.CommitInterval),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.WithLogger(logging.Kgo(cfg.Logger)),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	cl, err := kgo.NewClient(append(opts, conn...)...)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	c.cl = cl
	return c, nil
}

// Client is the underlying franz-go client.
func (c *Consumer) Client() *kgo.Client { return c.cl }

// DefaultStuckAfter is how long a partition may hold unfinished records
// without finishing any before the parts report it in /readyz: long
// enough for a burst to drain or a broker to come back, short enough for
// an operator's probe to notice a part that stopped.
const DefaultStuckAfter = 30 * time.Second

// Stalled is a partition that holds unfinished records and has finished
// none of them for a while.
type Stalled struct {
	Topic       string
	Partition   int32
	Outstanding int           // records read and not yet finished
	Idle        time.Duration // since a record last finished, or records came to an idle partition
}

func (s Stalled) String() string {
	return fmt.Sprintf("%s[%d]: %d records unfinished, none finished for %s",
		s.Topic, s.Partition, s.Outstanding, s.Idle.Round(time.Second))
}

// Stuck returns the partitions of this member that, as of now, hold
// unfinished records and have finished none for at least after, ordered
// by topic and partition; nil when none. A partition that is paused for
// good, or whose handler stopped calling Done, shows here; one that is
// merely behind (records not yet fetched) does not.
func (c *Consumer) Stuck(now time.Time, after time.Duration) []Stalled {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Stalled
	for key, t := range c.parts {
		if n := t.outstanding(); n > 0 && now.Sub(t.since) >= after {
			out = append(out, Stalled{Topic: key.topic, Partition: key.part, Outstanding: n, Idle: now.Sub(t.since)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// ErrStuck is wrapped by StuckError's errors.
var ErrStuck = errors.New("no progress")

// StuckError describes stalled partitions as one error wrapping ErrStuck,
// for a part's /readyz; nil when there are none.
func StuckError(stalled []Stalled) error {
	if len(stalled) == 0 {
		return nil
	}
	parts := make([]string, len(stalled))
	for i, s := range stalled {
		parts[i] = s.String()
	}
	return fmt.Errorf("%w: %s", ErrStuck, strings.Join(parts, "; "))
}

// Run polls until ctx ends, then commits what is finished, leaves the group
// and closes the client. It returns nil on a clean stop.
func (c *Consumer) Run(ctx context.Context) error {
	defer c.close()
	for {
		fetches := c.cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			c.cl.AllowRebalance()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn().Err(err).Str("topic", topic).Int32("partition", p).Msg("fetch error")
			}
		})
		batch := c.prepare(ctx, fetches)
		if len(batch) > 0 {
			c.h.Handle(ctx, batch)
		}
		c.cl.AllowRebalance()
	}
}

// prepare decodes a fetch, dead-letters what does not decode, tracks the
// rest and pauses partitions with too much unfinished work.
func (c *Consumer) prepare(ctx context.Context, fetches kgo.Fetches) []*Delivery {
	var batch []*Delivery
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		key := tp{p.Topic, p.Partition}
		c.mu.Lock()
		t := c.parts[key]
		if t == nil { // fetched just before a revoke: the next owner reads it
			c.mu.Unlock()
			return
		}
		now := c.now()
		for _, r := range p.Records {
			t.add(r.Offset, now)
		}
		over := t.outstanding() >= c.cfg.MaxOutstanding && !c.paused[key]
		if over {
			c.paused[key] = true
		}
		c.mu.Unlock()
		if over {
			c.cl.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
		}
		for _, r := range p.Records {
			var ev topics.Event
			var err error
			if r.Value == nil {
				err = errors.New("empty record value")
			} else {
				ev, err = c.cfg.Decode(r.Topic, r.Value)
			}
			if err != nil {
				if c.deadLetter(ctx, r, err) {
					c.finish(t, r)
				}
				continue
			}
			batch = append(batch, &Delivery{Record: r, Event: ev, c: c, t: t})
		}
	})
	return batch
}

// deadLetter writes r to the dead-letter topic (whole, or as a reference
// when it is too large to copy) and reports whether r may be marked done:
// yes once the dead letter is written, and also when writing it failed for
// good — logged and counted, so a dead letter never blocks the partition —
// but not when ctx ended first, so the next owner dead-letters it.
func (c *Consumer) deadLetter(ctx context.Context, r *kgo.Record, cause error) bool {
	log := c.log.With().Str("topic", r.Topic).Int32("partition", r.Partition).Int64("offset", r.Offset).
		Str("dlq", c.cfg.DLQ).Logger()
	kind, err := DeadLetter(ctx, c.cfg.Producer, c.cfg.DLQ, r, cause)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		c.dlqd++
		if kind == DeadLetterReference {
			c.dlqRefs++
			log.Warn().Err(cause).Int("bytes", len(r.Value)).
				Msg("undecodable record too large to copy; a reference to it sent to the dead-letter topic")
		} else {
			log.Warn().Err(cause).Msg("undecodable record sent to the dead-letter topic")
		}
		return true
	case ctx.Err() != nil:
		return false
	default:
		c.dlqFailed++
		log.Error().Err(err).AnErr("cause", cause).Msg("undecodable record dropped: it could not be dead-lettered")
		return true
	}
}

func (c *Consumer) finish(t *tracker, r *kgo.Record) {
	c.mu.Lock()
	if t.gone || !t.finish(r.Offset, c.now()) {
		c.mu.Unlock()
		return
	}
	key := tp{r.Topic, r.Partition}
	resume := c.paused[key] && t.outstanding() <= c.cfg.MaxOutstanding/2
	if resume {
		delete(c.paused, key)
	}
	next := t.next
	c.mu.Unlock()
	c.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
		r.Topic: {r.Partition: {Epoch: r.LeaderEpoch, Offset: next}},
	})
	if resume {
		c.cl.ResumeFetchPartitions(map[string][]int32{r.Topic: {r.Partition}})
	}
}

func (c *Consumer) assigned(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			c.parts[tp{topic, p}] = &tracker{}
		}
	}
	c.mu.Unlock()
	c.h.Assigned(ctx, parts)
}

func (c *Consumer) drop(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			key := tp{topic, p}
			if t := c.parts[key]; t != nil {
				t.gone = true
			}
			delete(c.parts, key)
			delete(c.paused, key)
		}
	}
}

func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	c.h.Revoked(ctx, parts)
	c.drop(parts)
	// Commit what the handler finished before it let go of the partitions.
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.CommitMarkedOffsets(cctx); err != nil {
		c.log.Warn().Err(err).Msg("commit on revoke failed")
	}
}

func (c *Consumer) lost(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.h.Revoked(ctx, parts)
	c.drop(parts)
}

func (c *Consumer) close() {
	// Close leaves the group, which runs the revoke callback (and so the
	// final commit) for every partition still held.
	c.cl.Close()
}
