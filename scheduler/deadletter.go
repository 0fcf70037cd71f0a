package scheduler

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
)

// workerLetters counts the workers topic's records the scheduler
// dead-lettered; the group consumer counts its own.
type workerLetters struct {
	mu sync.Mutex
	n  consumer.DeadLetterCounts
}

func (w *workerLetters) add(kind consumer.DeadLetterResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch kind {
	case consumer.DeadLetterCopy:
		w.n.Letters++
	case consumer.DeadLetterReference:
		w.n.Letters++
		w.n.References++
	default:
		w.n.Failures++
	}
}

func (w *workerLetters) counts() consumer.DeadLetterCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// deadLetterWorker sends an undecodable record of the workers topic to the
// dead-letter topic and then deletes it from the (compacted) workers topic
// with a tombstone for its key, so that replicas starting later do not
// dead-letter it again. Every replica reads the whole topic, so replicas
// that read the record before the tombstone lands each write a dead
// letter; they carry the same origin (topic, partition, offset) headers.
// The tombstone may also delete a valid record of the same key written in
// between; its bridge rewrites it every heartbeat interval.
func (s *Scheduler) deadLetterWorker(ctx context.Context, r *kgo.Record, cause error) {
	s.log.Warn().Err(cause).Int32("partition", r.Partition).Int64("offset", r.Offset).
		Msg("undecodable worker record sent to the dead-letter topic")
	consumer.DeadLetterAsync(ctx, s.prod, s.names.DLQ(), r, fmt.Errorf("workers: %w", cause),
		func(kind consumer.DeadLetterResult, err error) {
			s.workerDL.add(kind)
			if err != nil {
				s.log.Error().Err(err).Int64("offset", r.Offset).Msg("worker record could not be dead-lettered; it stays in the workers topic")
				return
			}
			if len(r.Key) == 0 {
				return
			}
			s.prod.ProduceAsync(ctx, &kgo.Record{Topic: r.Topic, Key: r.Key}, func(err error) {
				if err != nil {
					s.log.Warn().Err(err).Int64("offset", r.Offset).Msg("tombstone for a dead-lettered worker record not written")
				}
			})
		})
}

// junkWorkers decides which undecodable records of the workers topic to
// dead-letter. While the topic is replayed from its start, a record whose
// key is written again later (by its bridge, or by the tombstone of an
// earlier dead letter) is what compaction would delete: it is dropped, so
// that every start does not dead-letter the same junk again. Once caught
// up, junk is dead-lettered as it comes. Used by one goroutine.
type junkWorkers struct {
	replaying bool
	pending   map[string]junkRecord
	order     []string
}

type junkRecord struct {
	r   *kgo.Record
	err error
}

func newJunkWorkers() *junkWorkers {
	return &junkWorkers{replaying: true, pending: map[string]junkRecord{}}
}

// read takes the next record and whether it failed to decode (a nil value
// is a tombstone, not junk); it returns the junk to dead-letter now.
func (j *junkWorkers) read(r *kgo.Record, err error) []junkRecord {
	junk := err != nil && r.Value != nil
	if !j.replaying || len(r.Key) == 0 {
		if junk {
			return []junkRecord{{r, err}}
		}
		return nil
	}
	k := string(r.Key)
	if _, ok := j.pending[k]; !ok && junk {
		j.order = append(j.order, k)
	}
	if junk {
		j.pending[k] = junkRecord{r, err}
	} else {
		delete(j.pending, k)
	}
	return nil
}

// caughtUp ends the replay and returns the junk no later record replaced,
// in the order it was read.
func (j *junkWorkers) caughtUp() []junkRecord {
	var out []junkRecord
	for _, k := range j.order {
		if rec, ok := j.pending[k]; ok {
			out = append(out, rec)
			delete(j.pending, k)
		}
	}
	j.replaying, j.order = false, nil
	return out
}
