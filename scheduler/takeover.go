package scheduler

import (
	"context"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
)

// takeoverSlack widens the window read at a takeover for clocks that
// disagree: arrival timestamps come from the ingress's clock, assignments'
// from the scheduler's.
const takeoverSlack = 5 * time.Second

// takeover is what a partition's previous owner did with the arrivals this
// replica is about to read again: an owner marks an arrival done once its
// assignment is acknowledged, and offsets are committed every second, so
// a replica that crashes leaves up to about a second of decided arrivals
// uncommitted. Placing them again would run them twice, on another worker
// where that worker's sidecar cannot tell (issue 13).
type takeover struct {
	// from is the start of the window read: the oldest uncommitted
	// arrival's timestamp minus takeoverSlack. Zero when nothing is
	// uncommitted.
	from time.Time
	// assigned maps an arrival id to the worker a previous owner assigned
	// it to; read from the invoker topics.
	assigned map[string]string
}

// readTakeover reads, for the newly assigned arrivals partitions parts,
// where their uncommitted records start and which of those arrivals a
// previous owner had already assigned. What cannot be read in time is left
// out: those arrivals are placed again, as before this existed.
func (s *Scheduler) readTakeover(ctx context.Context, parts []int32) takeover {
	tk := takeover{assigned: map[string]string{}}
	if len(parts) == 0 {
		return tk
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	arrivals := s.names.Arrivals()
	ends, err := s.adm.ListEndOffsets(ctx, arrivals)
	if err != nil {
		s.log.Warn().Err(err).Msg("takeover: end offsets of arrivals not read")
		return tk
	}
	committed, err := s.adm.FetchOffsets(ctx, s.group)
	if err != nil {
		s.log.Warn().Err(err).Msg("takeover: committed offsets not read")
		return tk
	}
	nparts := int32(0)
	ends.Each(func(o kadm.ListedOffset) { nparts = max(nparts, o.Partition+1) })
	at := map[int32]int64{}
	for _, p := range parts {
		end, ok := ends.Lookup(arrivals, p)
		if !ok || end.Err != nil {
			continue
		}
		c, ok := committed.Lookup(arrivals, p)
		if !ok || c.Err != nil || c.At < 0 || c.At >= end.Offset {
			continue // nothing committed (the group's first owner) or nothing uncommitted
		}
		at[p] = c.At
	}
	if len(at) == 0 {
		return tk
	}
	times, err := consumer.RecordTimes(ctx, s.readerConfig(arrivals, "-takeover"), at)
	if err != nil {
		s.log.Warn().Err(err).Msg("takeover: uncommitted arrivals not read")
		return tk
	}
	for _, t := range times {
		if tk.from.IsZero() || t.Before(tk.from) {
			tk.from = t
		}
	}
	if tk.from.IsZero() {
		return tk
	}
	// Older arrivals are past any deadline and answered 504 when read.
	tk.from = tk.from.Add(-takeoverSlack)
	if oldest := s.cfg.Clock().Add(-s.cfg.DefaultTimeout - s.cfg.TimeoutMargin); tk.from.Before(oldest) {
		tk.from = oldest
	}

	mine := map[int32]bool{}
	for p := range at {
		mine[p] = true
	}
	listed, err := s.adm.ListTopics(ctx)
	if err != nil {
		s.log.Warn().Err(err).Msg("takeover: topics not listed")
		return tk
	}
	prefix := s.names.Invoker("")
	for _, topic := range listed.Names() {
		if !strings.HasPrefix(topic, prefix) {
			continue
		}
		err := consumer.ReadRange(ctx, s.readerConfig(topic, "-takeover"), nil, tk.from, func(r *kgo.Record) error {
			a, err := topics.DecodeAssignment(r.Value)
			if err == nil && mine[topics.PartitionFor([]byte(a.Function), nparts)] {
				tk.assigned[a.ID] = a.Worker
			}
			return nil
		})
		if err != nil {
			s.log.Warn().Err(err).Str("topic", topic).Msg("takeover: assignments not read; their arrivals may run twice")
		}
	}
	return tk
}

// readerConfig is a plain reader of topic for this replica.
func (s *Scheduler) readerConfig(topic, role string) consumer.ReaderConfig {
	return consumer.ReaderConfig{
		Kafka:  s.conn(role),
		Topic:  topic,
		Logger: s.log,
	}
}
