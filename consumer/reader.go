package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/logging"
)

// ReaderConfig configures the plain (non-group) readers.
type ReaderConfig struct {
	// Kafka is how to reach the brokers (seed brokers required; TLS, SASL,
	// extra franz-go options appended last). Its ClientID defaults to
	// "pullsched-reader".
	Kafka kafkaconn.Config
	// Topic to read. Required.
	Topic string
	// Logger receives warnings. Default: none.
	Logger zerolog.Logger
	// FetchMaxWait is how long the broker may hold a fetch that finds no
	// new record. Default 200ms; it delays nothing that has arrived.
	FetchMaxWait time.Duration
}

func (c ReaderConfig) client(offsets map[int32]kgo.Offset) (*kgo.Client, error) {
	if c.Topic == "" {
		return nil, errors.New("reader: no topic")
	}
	conn, err := c.Kafka.WithClientID("pullsched-reader").ClientOpts()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.FetchMaxWait(cmp.Or(c.FetchMaxWait, 200*time.Millisecond)),
		kgo.WithLogger(logging.Kgo(c.Logger)),
	}
	if offsets != nil {
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.Topic: offsets}))
	} else {
		opts = append(opts, kgo.ConsumeTopics(c.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	return kgo.NewClient(append(opts, conn...)...)
}

// ReadRange reads the given partitions of the topic (all when parts is
// empty) from the first record at or after from (the start when from is
// zero) up to the end offsets seen when it starts, calling fn for each
// record in partition order. It returns when every partition is read to
// that end, or with ctx's error, or with fn's.
func ReadRange(ctx context.Context, cfg ReaderConfig, parts []int32, from time.Time, fn func(*kgo.Record) error) error {
	boot, err := cfg.client(map[int32]kgo.Offset{})
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	adm := kadm.NewClient(boot)
	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	if err != nil {
		boot.Close()
		return fmt.Errorf("reader: end offsets of %s: %w", cfg.Topic, err)
	}
	var starts kadm.ListedOffsets
	if from.IsZero() {
		starts, err = adm.ListStartOffsets(ctx, cfg.Topic)
	} else {
		starts, err = adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), cfg.Topic)
	}
	boot.Close()
	if err != nil {
		return fmt.Errorf("reader: start offsets of %s: %w", cfg.Topic, err)
	}
	want := map[int32]bool{}
	for _, p := range parts {
		want[p] = true
	}
	offsets := map[int32]kgo.Offset{}
	remaining := map[int32]int64{} // partition → end offset still to reach
	ends.Each(func(e kadm.ListedOffset) {
		if e.Topic != cfg.Topic || e.Err != nil || (len(want) > 0 && !want[e.Partition]) {
			return
		}
		s, ok := starts.Lookup(cfg.Topic, e.Partition)
		if !ok || s.Err != nil {
			return
		}
		start := s.Offset
		if start < 0 || start > e.Offset { // no record at or after from
			start = e.Offset
		}
		if start < e.Offset {
			offsets[e.Partition] = kgo.NewOffset().At(start)
			remaining[e.Partition] = e.Offset
		}
	})
	return readTo(ctx, cfg, offsets, remaining, fn)
}

// ReadFrom reads the given partitions of the topic from the given offsets
// up to the end offsets seen when it starts, calling fn for each record in
// partition order. An offset below the partition's start reads from the
// start; one at or past its end reads nothing.
func ReadFrom(ctx context.Context, cfg ReaderConfig, from map[int32]int64, fn func(*kgo.Record) error) error {
	boot, err := cfg.client(map[int32]kgo.Offset{})
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	adm := kadm.NewClient(boot)
	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	boot.Close()
	if err != nil {
		return fmt.Errorf("reader: end offsets of %s: %w", cfg.Topic, err)
	}
	offsets := map[int32]kgo.Offset{}
	remaining := map[int32]int64{}
	for p, start := range from {
		e, ok := ends.Lookup(cfg.Topic, p)
		if !ok || start >= e.Offset {
			continue
		}
		offsets[p] = kgo.NewOffset().At(max(start, 0))
		remaining[p] = e.Offset
	}
	return readTo(ctx, cfg, offsets, remaining, fn)
}

// readTo reads each partition of offsets from its offset until the offset
// before its end in remaining.
func readTo(ctx context.Context, cfg ReaderConfig, offsets map[int32]kgo.Offset, remaining map[int32]int64, fn func(*kgo.Record) error) error {
	if len(remaining) == 0 {
		return nil
	}
	cl, err := cfg.client(offsets)
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	defer cl.Close()
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("reader: %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		var cbErr error
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end || cbErr != nil {
				return
			}
			if err := fn(r); err != nil {
				cbErr = err
				return
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		})
		if cbErr != nil {
			return cbErr
		}
	}
	return nil
}

// Follow reads the whole topic from its start and keeps following it until
// ctx ends, calling fn for each record from the calling goroutine. caughtUp,
// if not nil, is called once, when the records that existed at the start
// have all been read. It returns nil when ctx ends.
func Follow(ctx context.Context, cfg ReaderConfig, fn func(*kgo.Record), caughtUp func()) error {
	cl, err := cfg.client(nil)
	if err != nil {
		return fmt.Errorf("reader: %w", err)
	}
	defer cl.Close()
	ends, err := listEnds(ctx, kadm.NewClient(cl), cfg.Topic)
	if err != nil {
		return err
	}
	signal := func() {
		if caughtUp != nil {
			caughtUp()
			caughtUp = nil
		}
	}
	if len(ends) == 0 {
		signal()
	}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			cfg.Logger.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("fetch error")
		})
		fetches.EachRecord(func(r *kgo.Record) {
			fn(r)
			if end, ok := ends[r.Partition]; ok && r.Offset+1 >= end {
				delete(ends, r.Partition)
				if len(ends) == 0 {
					signal()
				}
			}
		})
	}
}

// listEnds returns the non-empty partitions of topic with their end offsets.
func listEnds(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("reader: start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("reader: end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			return
		}
		if s, ok := starts.Lookup(topic, e.Partition); ok && s.Err == nil && s.Offset < e.Offset {
			out[e.Partition] = e.Offset
		}
	})
	return out, nil
}

// Tail reads the partitions of one topic from fixed offsets onwards, for a
// reader that must see every record written after a point it chose (a
// controller's results from the end offsets it listed before serving).
// Create it with NewTail; Run reads until its context ends.
type Tail struct {
	cfg ReaderConfig
	cl  *kgo.Client
}

// NewTail opens a reader of cfg.Topic that starts each partition of
// offsets at the given offset. The connection itself is lazy.
func NewTail(cfg ReaderConfig, offsets map[int32]int64) (*Tail, error) {
	if len(offsets) == 0 {
		return nil, fmt.Errorf("reader: no partitions of %s to tail", cfg.Topic)
	}
	at := make(map[int32]kgo.Offset, len(offsets))
	for p, o := range offsets {
		at[p] = kgo.NewOffset().At(o)
	}
	cl, err := cfg.client(at)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	return &Tail{cfg: cfg, cl: cl}, nil
}

// Run calls fn for each record, from the calling goroutine, until ctx
// ends; then it closes the reader. Fetch errors are logged and retried.
func (t *Tail) Run(ctx context.Context, fn func(*kgo.Record)) {
	defer t.cl.Close()
	for {
		fetches := t.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.cfg.Logger.Warn().Err(err).Str("topic", topic).Int32("partition", p).Msg("fetch error")
		})
		fetches.EachRecord(fn)
	}
}

// Close closes a Tail that will not Run.
func (t *Tail) Close() { t.cl.Close() }
