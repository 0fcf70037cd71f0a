package controllerbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
)

// resultsReader reads this controller's results topic from the end offsets
// it saw at start: every result produced after start is read, none before.
type resultsReader struct {
	c     *Controller
	topic string
	tail  *consumer.Tail
}

// newResultsReader lists the end offsets of the results topic and opens a
// client consuming exactly from them. A lazily resolved "at end" offset
// would not do: a result produced between Ready and the first fetch would be
// skipped.
func newResultsReader(ctx context.Context, c *Controller, adm *kadm.Client) (*resultsReader, error) {
	topic := c.names.Results(c.cfg.ID)
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	offsets := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic {
			offsets[o.Partition] = o.Offset
		}
	})
	if len(offsets) == 0 {
		return nil, fmt.Errorf("controller: results topic %s has no partitions", topic)
	}
	tail, err := consumer.NewTail(consumer.ReaderConfig{
		Kafka:        c.conn("-results"),
		Topic:        topic,
		Logger:       c.log.With().Str("reader", "results").Logger(),
		FetchMaxWait: 100 * time.Millisecond,
	}, offsets)
	if err != nil {
		return nil, fmt.Errorf("controller: results reader: %w", err)
	}
	return &resultsReader{c: c, topic: topic, tail: tail}, nil
}

// run reads results until ctx ends, then closes the reader.
func (rr *resultsReader) run(ctx context.Context) { rr.tail.Run(ctx, rr.handle) }

// handle routes one result record.
func (rr *resultsReader) handle(r *kgo.Record) {
	c := rr.c
	res, err := topics.DecodeResult(r.Value)
	if err != nil {
		c.m.badRecs.Inc()
		c.log.Warn().Err(err).Int64("offset", r.Offset).Msg("undecodable result; dead-lettering it")
		c.deadLetter(r, err)
		return
	}
	c.resultsSeen.Add(1)
	span := traceResult(r, res)
	out := c.book.deliver(res, time.Now())
	traceDelivered(span, out)
	c.m.result(out)
	switch out {
	case outDuplicate:
		c.log.Debug().Str("activation", res.ID).Str("worker", res.Worker).Msg("duplicate result ignored")
	case outUnknown:
		c.log.Debug().Str("activation", res.ID).Msg("result for an unknown activation ignored")
	}
}

// deadLetter sends an undecodable record to the dlq the consumer package's
// way: a copy with its headers and the reason, or a reference when it is
// too large to copy. It does not wait, so the results reader never stalls
// on the dlq.
func (c *Controller) deadLetter(r *kgo.Record, cause error) {
	prod := c.prod.Load()
	if prod == nil {
		c.dlqFailed.Add(1)
		return
	}
	consumer.DeadLetterAsync(context.Background(), prod, c.names.DLQ(), r, cause, func(kind consumer.DeadLetterResult, err error) {
		log := c.log.With().Int32("partition", r.Partition).Int64("offset", r.Offset).Logger()
		switch {
		case err != nil:
			c.dlqFailed.Add(1)
			log.Error().Err(err).AnErr("cause", cause).Msg("undecodable result dropped: it could not be dead-lettered")
		case kind == consumer.DeadLetterReference:
			c.dlqRefs.Add(1)
			c.dlqLetters.Add(1)
			log.Warn().Int("bytes", len(r.Value)).Msg("undecodable result too large to copy; a reference to it dead-lettered")
		default:
			c.dlqLetters.Add(1)
		}
	})
}

// deadLetterCounts reads the dead-letter counters for /metrics.
func (c *Controller) deadLetterCounts() consumer.DeadLetterCounts {
	return consumer.DeadLetterCounts{Letters: c.dlqLetters.Load(), References: c.dlqRefs.Load(), Failures: c.dlqFailed.Load()}
}

// endOffsets lists the end offsets of topic, retrying for a while when the
// broker does not know the topic yet (metadata lags just after creation).
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (kadm.ListedOffsets, error) {
	var last error
	for range 100 {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			return ends, nil
		}
		last = err
		if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.LeaderNotAvailable) {
			break
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return nil, fmt.Errorf("controller: end offsets of %s: %w", topic, last)
}
