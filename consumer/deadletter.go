package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/producer"
)

// Headers of a dead letter that is a reference to its record rather than a
// copy: the record's size (key, value and headers, in bytes), why it was not
// copied whole, and how many bytes of its value the dead letter's value
// keeps (its prefix).
const (
	HeaderSize      = "pullsched-size"
	HeaderReference = "pullsched-reference"
	HeaderPrefix    = "pullsched-prefix"
)

// PrefixBytes is how much of a record's value (and key) a reference keeps.
const PrefixBytes = 1024

// deadLetterAttempts bounds the writes of one dead letter that fail for a
// reason other than its size; each waits up to the producer's delivery
// timeout, which franz-go already spends retrying.
const deadLetterAttempts = 3

// ErrDeadLetterFailed is wrapped by DeadLetter's error when a dead letter
// could not be written: the record is lost, and the caller should say so.
var ErrDeadLetterFailed = errors.New("dead letter not written")

// DeadLetterResult says how a record was dead-lettered.
type DeadLetterResult int

// How a record was dead-lettered.
const (
	DeadLetterFailed    DeadLetterResult = iota // nothing written
	DeadLetterCopy                              // the record whole, with the reason in headers
	DeadLetterReference                         // a reference: where it was, its size, a prefix
)

// deadLetterCopy is r as a dead letter on dlq: its key, value and headers,
// and the reason and origin in headers.
func deadLetterCopy(dlq string, r *kgo.Record, cause error) *kgo.Record {
	return &kgo.Record{
		Topic: dlq,
		Key:   r.Key,
		Value: r.Value,
		Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
			kgo.RecordHeader{Key: HeaderError, Value: []byte(cause.Error())},
			kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
			kgo.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			kgo.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		),
	}
}

// deadLetterReference is a dead letter that points at r instead of copying
// it: the origin, the reason, r's size, why it is a reference, and the first
// PrefixBytes of r's key and value. r's own headers are left out (they may
// be what is too large); the record itself stays in its topic until its
// retention ends.
func deadLetterReference(dlq string, r *kgo.Record, cause error, why string) *kgo.Record {
	size := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value)
	}
	prefix := r.Value[:min(len(r.Value), PrefixBytes)]
	return &kgo.Record{
		Topic: dlq,
		Key:   r.Key[:min(len(r.Key), PrefixBytes)],
		Value: prefix,
		Headers: []kgo.RecordHeader{
			{Key: HeaderError, Value: []byte(truncate(cause.Error(), PrefixBytes))},
			{Key: HeaderTopic, Value: []byte(r.Topic)},
			{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
			{Key: HeaderSize, Value: []byte(strconv.Itoa(size))},
			{Key: HeaderReference, Value: []byte(truncate(why, PrefixBytes))},
			{Key: HeaderPrefix, Value: []byte(strconv.Itoa(len(prefix)))},
		},
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// tooLarge reports whether a produce error says the record is too large for
// the client or the broker.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// DeadLetter writes r to the dead-letter topic dlq through p, with cause
// as the reason, and waits for the acknowledgement. A record whose copy
// would exceed p's record limit, or that the broker refuses as too large,
// is dead-lettered as a reference (see HeaderReference) instead, so a dead
// letter never blocks a partition. Other failures are retried a few times;
// then DeadLetter gives up with an error wrapping ErrDeadLetterFailed. It
// also returns, without retrying, when ctx ends.
func DeadLetter(ctx context.Context, p *producer.Producer, dlq string, r *kgo.Record, cause error) (DeadLetterResult, error) {
	dl, kind := deadLetterFor(p, dlq, r, cause)
	var err error
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = p.Client().ProduceSync(ctx, dl).FirstErr()
		if err == nil {
			return kind, nil
		}
		if ctx.Err() != nil {
			return DeadLetterFailed, fmt.Errorf("%w: %w", ErrDeadLetterFailed, ctx.Err())
		}
		if tooLarge(err) && kind == DeadLetterCopy {
			dl, kind = deadLetterReference(dlq, r, cause, "the broker refused the copy: "+err.Error()), DeadLetterReference
			attempt = 0 // a new record: its own attempts
			continue
		}
		if attempt >= deadLetterAttempts {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return DeadLetterFailed, fmt.Errorf("%w: %w", ErrDeadLetterFailed, ctx.Err())
		case <-t.C:
		}
		backoff *= 4
	}
	return DeadLetterFailed, fmt.Errorf("%w after %d attempts: %w", ErrDeadLetterFailed, deadLetterAttempts, err)
}

// DeadLetterAsync is DeadLetter without waiting and with a single attempt
// (franz-go's own retries aside): done is called once, from the client's
// goroutine, so it must not block. A copy the broker refuses as too large is
// written again as a reference before done is called.
func DeadLetterAsync(ctx context.Context, p *producer.Producer, dlq string, r *kgo.Record, cause error, done func(DeadLetterResult, error)) {
	dl, kind := deadLetterFor(p, dlq, r, cause)
	p.ProduceAsync(ctx, dl, func(err error) {
		switch {
		case err == nil:
			done(kind, nil)
		case tooLarge(err) && kind == DeadLetterCopy:
			// A promise must not block on the client: TryProduce fails at
			// once rather than wait for buffer space.
			ref := deadLetterReference(dlq, r, cause, "the broker refused the copy: "+err.Error())
			p.Client().TryProduce(ctx, ref, func(_ *kgo.Record, err error) {
				if err != nil {
					done(DeadLetterFailed, fmt.Errorf("%w: %w", ErrDeadLetterFailed, err))
					return
				}
				done(DeadLetterReference, nil)
			})
		default:
			done(DeadLetterFailed, fmt.Errorf("%w: %w", ErrDeadLetterFailed, err))
		}
	})
}

// deadLetterFor is the dead letter of r: a copy when it fits p's record
// limit, a reference otherwise.
func deadLetterFor(p *producer.Producer, dlq string, r *kgo.Record, cause error) (*kgo.Record, DeadLetterResult) {
	dl := deadLetterCopy(dlq, r, cause)
	if n := producer.BatchBytes(dl); n > p.MaxRecordBytes() {
		why := fmt.Sprintf("a copy would take %d bytes, over the producer's limit of %d", n, p.MaxRecordBytes())
		return deadLetterReference(dlq, r, cause, why), DeadLetterReference
	}
	return dl, DeadLetterCopy
}
