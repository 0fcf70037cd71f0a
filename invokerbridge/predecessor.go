package invokerbridge

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
)

// errBudget stops the predecessor read at PredecessorMaxBytes.
var errBudget = errors.New("predecessor read budget spent")

// learnPredecessor reads the completions published for this runner's
// worker over the last PredecessorWindow and marks their activation ids
// finished, so that assignments a predecessor answered but did not commit
// are not run again when they are re-delivered. It is called as the
// assignment partition is given to this runner, before any of its records
// is handled (the consumer does not call Handle during Assigned). The read
// is bounded by PredecessorMaxBytes and PredecessorTimeout; what it could
// not read is logged, and the partition is served all the same.
func (r *runner) learnPredecessor(ctx context.Context) {
	cfg := r.b.cfg
	if cfg.PredecessorWindow < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.PredecessorTimeout)
	defer cancel()
	var ids []string
	var bytes int64
	records := 0
	err := consumer.ReadRange(ctx, consumer.ReaderConfig{
		Kafka:  r.b.conn("-predecessor"),
		Topic:  r.b.names.WorkerEvents(),
		Logger: r.log,
	}, nil, time.Now().Add(-cfg.PredecessorWindow), func(rec *kgo.Record) error {
		records++
		if bytes += int64(len(rec.Value)); bytes > cfg.PredecessorMaxBytes {
			return errBudget
		}
		ev, err := topics.DecodeWorkerEvent(rec.Value)
		if err != nil {
			return nil // the schedulers dead-letter it
		}
		if c, ok := ev.(*topics.Completion); ok && c.Worker == r.w.id {
			ids = append(ids, c.ID)
		}
		return nil
	})
	n := r.b.dedupe.learn(ids)
	ev := r.log.Info()
	if err != nil {
		ev = r.log.Warn().Err(err)
	}
	ev.Int("records", records).Int("completions", len(ids)).Int("learned", n).
		Dur("window", cfg.PredecessorWindow).Msg("read what a predecessor finished")
}
