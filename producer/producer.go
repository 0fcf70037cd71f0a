package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/logging"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/tracing"
)

// Config configures a Producer.
type Config struct {
	// Kafka is how to reach the brokers (seed brokers required; TLS, SASL,
	// extra franz-go options appended last). Its ClientID defaults to
	// "pullsched".
	Kafka kafkaconn.Config
	// Linger is how long a partition's batch waits for more records. Default
	// 0: send at once, lowest latency; a few milliseconds trade latency for
	// fewer, larger requests under heavy load.
	Linger time.Duration
	// MaxBuffered bounds the records waiting for delivery; Publish blocks
	// (until its context ends) when the buffer is full. Default 10,000.
	MaxBuffered int
	// DeliveryTimeout bounds how long a record may take to be acknowledged
	// before its delivery fails. Default 30s; at least 1s.
	DeliveryTimeout time.Duration
	// MaxRecordBytes is the largest record batch the producer sends
	// (kgo.ProducerBatchMaxBytes); a record that cannot fit in a batch on
	// its own fails at once with kerr.MessageTooLarge. Default
	// topics.MaxMessageBytes (1,048,588, Kafka's default max.message.bytes),
	// the max.message.bytes pullsched sets on the topics it creates, so that
	// what one part may write another can always write again. Raising it
	// only helps if the topics and brokers allow as much.
	MaxRecordBytes int32
	// Logger receives the Kafka client's warnings. Default: none.
	Logger zerolog.Logger
}

// ErrNoBrokers means Config.Kafka.Brokers was empty.
var ErrNoBrokers = kafkaconn.ErrNoBrokers

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	c.Kafka = c.Kafka.WithClientID("pullsched")
	if c.MaxBuffered == 0 {
		c.MaxBuffered = 10000
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 30 * time.Second
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = topics.MaxMessageBytes
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if c.Linger < 0 || c.MaxBuffered < 0 || c.DeliveryTimeout < 0 {
		return errors.New("producer: negative linger, buffer or timeout")
	}
	if c.MaxRecordBytes != 0 && (c.MaxRecordBytes < minRecordBytes || c.MaxRecordBytes > maxRecordBytes) {
		return fmt.Errorf("producer: max record bytes %d outside [%d, %d]", c.MaxRecordBytes, minRecordBytes, maxRecordBytes)
	}
	if c.DeliveryTimeout > 0 && c.DeliveryTimeout < time.Second {
		return errors.New("producer: delivery timeout under 1s")
	}
	return nil
}

// The bounds franz-go accepts for a batch size.
const (
	minRecordBytes = 512
	maxRecordBytes = 1 << 30
)

// Producer publishes events. It is safe for concurrent use.
type Producer struct {
	cl       *kgo.Client
	conn     kafkaconn.Config
	maxBytes int32
}

// New connects a producer. The connection itself is lazy: an unreachable
// broker shows up as a delivery error.
func New(cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	conn, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	opts := []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedRecords(cfg.MaxBuffered),
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(cfg.MaxRecordBytes),
		kgo.WithLogger(logging.Kgo(cfg.Logger)),
	}
	cl, err := kgo.NewClient(append(opts, conn...)...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &Producer{cl: cl, conn: cfg.Kafka, maxBytes: cfg.MaxRecordBytes}, nil
}

// Ping checks that a broker answers with the producer's connection
// settings; a refused login or certificate fails at once with an error
// naming the settings (see kafkaconn.Ping). Parts call it when they start.
func (p *Producer) Ping(ctx context.Context) error { return kafkaconn.Ping(ctx, p.conn, p.cl) }

// MaxRecordBytes is the largest batch this producer sends: a record whose
// BatchBytes exceed it cannot be written.
func (p *Producer) MaxRecordBytes() int { return int(p.maxBytes) }

// Fits reports whether r, alone in a batch, is within MaxRecordBytes.
func (p *Producer) Fits(r *kgo.Record) bool { return BatchBytes(r) <= p.MaxRecordBytes() }

// BatchBytes is an upper bound on the size of a record batch (format v2,
// uncompressed) holding r alone: what a broker measures against
// max.message.bytes and franz-go against its batch limit.
func BatchBytes(r *kgo.Record) int {
	const (
		batchHeader = 61                                                  // base offset … record count
		varint      = 5                                                   // the widest varint a length takes here
		fixed       = 1 + 10 + varint + varint + varint + varint + varint // attributes, timestamp and offset deltas, length, key and value lengths, header count
	)
	n := batchHeader + fixed + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 2*varint + len(h.Key) + len(h.Value)
	}
	return n
}

// Client is the underlying franz-go client, for admin calls that should
// share its connections.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Record encodes ev into a record for topic, keyed by topics.Key(ev).
func Record(topic string, ev topics.Event) (*kgo.Record, error) {
	b, err := topics.Encode(ev)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: topic, Key: []byte(topics.Key(ev)), Value: b}, nil
}

// Publish encodes ev, sends it to topic and waits until the broker has
// acknowledged it, delivery failed, or ctx ended. When ctx ends first the
// record may still be delivered later (it is already in flight); the error
// then wraps ctx's. With tracing on, the record carries the trace context
// of ctx's span in its headers.
func (p *Producer) Publish(ctx context.Context, topic string, ev topics.Event) error {
	r, err := Record(topic, ev)
	if err != nil {
		return err
	}
	tracing.Inject(ctx, r)
	done := make(chan error, 1)
	p.ProduceAsync(ctx, r, func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("publish %s: %w", ev.Kind(), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %s to %s: outcome unknown: %w", ev.Kind(), topic, ctx.Err())
	}
}

// PublishAsync encodes ev and sends it to topic; done is called once with
// the delivery error (nil on acknowledgement), from the client's goroutine,
// so it must not block. An encoding error is reported through done too.
// PublishAsync blocks while the buffer is full, until ctx ends. With
// tracing on, the record carries the trace context of ctx's span.
func (p *Producer) PublishAsync(ctx context.Context, topic string, ev topics.Event, done func(error)) {
	r, err := Record(topic, ev)
	if err != nil {
		done(err)
		return
	}
	tracing.Inject(ctx, r)
	p.ProduceAsync(ctx, r, done)
}

// ProduceAsync sends a prepared record; done is called as in PublishAsync.
func (p *Producer) ProduceAsync(ctx context.Context, r *kgo.Record, done func(error)) {
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("publish to %s: %w", r.Topic, err)
		}
		done(err)
	})
}

// Flush waits until every buffered record is delivered or ctx ends.
func (p *Producer) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }

// Close flushes for at most the given time, then closes the client.
func (p *Producer) Close(flush time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), flush)
	defer cancel()
	_ = p.cl.Flush(ctx)
	p.cl.Close()
}
