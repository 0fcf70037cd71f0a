package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

// Assignments stranded on a worker whose bridge stopped.
//
// A bridge stops taking assignments the moment its worker is removed or its
// sidecar shuts down, while the schedulers go on placing work there until
// they read that the worker left: those assignments wait in the worker's
// invoker topic, unread, and their callers would get 504 at the deadline.
// The bridge's last record says Stopped once it has answered what it took
// and committed. If no bridge serves the worker again within a heartbeat
// timeout (a restarted sidecar resumes from the committed offset and runs
// them itself), the scheduler reads the topic from the bridge group's
// committed offset: the arrivals found there that it still waits for on
// that worker were never taken, and are placed again.

// strandCheck is the core asking the driver which of its assignments on
// worker were never taken; since is when the oldest of them was decided,
// bounding the read when the group has no committed offset.
type strandCheck func(worker string, since time.Time)

// checkStranded asks, for every worker whose bridge stopped at least a
// heartbeat timeout ago and that no bridge serves since, which of the
// assignments still waited for there were never taken.
func (st *state) checkStranded(now time.Time) {
	for id, w := range st.workers {
		if w.stopped.IsZero() || w.strandAsked || now.Sub(w.stopped) < st.cfg.HeartbeatTimeout || now.Before(w.strandRetry) {
			continue
		}
		var since time.Time
		for _, j := range st.jobs {
			if j.worker == id && (j.phase == phaseAssigned || j.phase == phaseAdopted || j.phase == phaseProducing) &&
				(since.IsZero() || j.assignT.Before(since)) {
				since = j.assignT
			}
		}
		if since.IsZero() {
			w.stopped = time.Time{} // nothing waited for there
			continue
		}
		w.strandAsked = true
		if st.strandCheck != nil {
			st.strandCheck(id, since)
		}
	}
}

// stranded places again the arrivals whose assignments to worker sit in its
// invoker topic untaken (ids, as read by the driver). Nothing is done if a
// bridge serves the worker again meanwhile: it takes them. Assignments not
// yet acknowledged by the broker when the topic was read are looked for
// again at the next sweep.
func (st *state) stranded(worker string, ids map[string]bool, err error) {
	w := st.workers[worker]
	if w == nil || w.stopped.IsZero() {
		return
	}
	w.strandAsked = false
	if err != nil {
		w.strandRetry = st.now().Add(time.Second)
		st.log.Warn().Err(err).Str("worker", worker).Msg("assignments left on a stopped worker not read; retrying")
		return
	}
	now := st.now()
	again, producing := 0, false
	for id := range ids {
		j := st.jobs[id]
		if j == nil || j.worker != worker || (j.phase != phaseAssigned && j.phase != phaseAdopted) {
			continue // answered, timed out, or not ours
		}
		st.heap.remove(j)
		st.release(j, policy.Completion{Worker: worker, Function: j.a.Function, OK: false, Now: now})
		st.gen++
		j.gen, j.phase, j.worker, j.noWait = st.gen, phasePending, "", true
		st.retry = append(st.retry, j)
		st.m.stranded.Inc()
		again++
	}
	for _, j := range st.jobs {
		if j.worker == worker && j.phase == phaseProducing {
			producing = true
			break
		}
	}
	if again > 0 {
		st.dirty = true
		st.log.Info().Str("worker", worker).Int("placed_again", again).
			Msg("assignments left untaken on a stopped worker placed again")
	}
	if !producing {
		w.stopped = time.Time{} // done with this worker until it stops again
	}
}

// readStranded reads worker's invoker topic from its bridge group's
// committed offset (or, with none, from the first record at or after
// since) to its end, and hands the arrival ids found to the core.
func (s *Scheduler) readStranded(ctx context.Context, worker string, since time.Time) {
	ids, err := s.untaken(ctx, worker, since)
	s.inbox.put(func() { s.st.stranded(worker, ids, err) })
}

func (s *Scheduler) untaken(ctx context.Context, worker string, since time.Time) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topic := s.names.Invoker(worker)
	ids := map[string]bool{}
	collect := func(r *kgo.Record) error {
		if a, err := topics.DecodeAssignment(r.Value); err == nil && a.Worker == worker {
			ids[a.ID] = true
		}
		return nil
	}
	committed, err := s.adm.FetchOffsets(ctx, s.names.InvokerGroup(worker))
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) { // not found: nothing committed
		return nil, err
	}
	if c, ok := committed.Lookup(topic, 0); ok && c.Err == nil && c.At >= 0 {
		return ids, consumer.ReadFrom(ctx, s.readerConfig(topic, "-stranded"), map[int32]int64{0: c.At}, collect)
	}
	// No commit: the bridge never finished anything, so nothing from the
	// oldest assignment waited for on is taken.
	return ids, consumer.ReadRange(ctx, s.readerConfig(topic, "-stranded"), nil, since.Add(-takeoverSlack), collect)
}
