package owbridge

// The ingress role: activations from the controllers become arrivals;
// what pullsched answers without an invoker goes back as a synthetic ack.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// assignmentOverhead is room left in a record for what an assignment adds
// to its arrival (worker, times, scheduler id): an arrival that fills a
// record would make an assignment the scheduler cannot write.
const assignmentOverhead = 1024

// limitsOf returns what is known of fn's limits, defaults filled in.
func (b *Bridge) limitsOf(fn string) (memMB int, timeout time.Duration) {
	b.mu.Lock()
	l := b.limits[fn]
	b.mu.Unlock()
	memMB, timeout = b.cfg.DefaultMemoryMB, b.cfg.DefaultTimeout
	if l.Memory > 0 {
		memMB = l.Memory
	}
	if l.Timeout > 0 {
		timeout = time.Duration(l.Timeout) * time.Millisecond
	}
	return memMB, timeout
}

func (b *Bridge) learn(fn string, a *WhiskActivation) {
	if a == nil || fn == "" {
		return
	}
	if l, ok := a.Limits(); ok && (l.Memory > 0 || l.Timeout > 0) {
		b.mu.Lock()
		b.limits[fn] = l
		b.mu.Unlock()
	}
}

func newEntry(m *ActivationMessage, now, deadline time.Time) *entry {
	return &entry{
		id: m.ActivationID, fn: FunctionKey(m.User.Namespace.Name, m.Action), controller: m.RootControllerIndex.AsString,
		blocking: m.Blocking, transid: m.TransID, namespace: m.User.Namespace.Name, subject: m.User.Subject,
		action: m.Action, arrived: now, deadline: deadline, health: isHealthTest(m.Action),
	}
}

// handleActivations turns the controllers' activations into arrivals.
func (b *Bridge) handleActivations(ctx context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		ev := d.Event.(*activationEvent)
		m := ev.msg
		now := b.now()
		if isHealthTest(m.Action) {
			b.healthTest(ctx, d, m, ev.raw, now)
			continue
		}
		fn := FunctionKey(m.User.Namespace.Name, m.Action)
		mem, limit := b.limitsOf(fn)
		deadline := now.Add(b.cfg.forcedAckAfter(limit) - b.cfg.AnswerMargin)
		e, _, handled := b.book.add(newEntry(m, now, deadline))
		if handled {
			b.cnt.duplicates.Add(1)
			d.Done()
			continue
		}
		log := b.log.With().Str("id", m.ActivationID).Str("fn", fn).Logger()
		arr := &topics.Arrival{ID: EventID(m.ActivationID), Function: fn, Payload: ev.raw, Reply: b.cfg.ID,
			MemoryMB: mem, Arrived: e.arrived, Deadline: e.deadline}
		rec, err := producer.Record(b.names.Arrivals(), arr)
		if err == nil && producer.BatchBytes(rec)+assignmentOverhead > b.prod.MaxRecordBytes() {
			err = fmt.Errorf("the activation message of %d bytes is more than a pullsched assignment can carry (%d bytes a record)",
				len(ev.raw), b.prod.MaxRecordBytes())
		}
		if err != nil {
			log.Warn().Err(err).Msg("activation refused")
			b.synthetic(ctx, e, "pullsched cannot take this activation: "+err.Error(), d.Done)
			continue
		}
		b.prod.ProduceAsync(ctx, rec, func(err error) {
			if err != nil {
				b.cnt.publishErrors.Add(1)
				log.Warn().Err(err).Msg("arrival not published")
				if ctx.Err() == nil {
					// Not from the producer's callback, which must not block.
					go b.synthetic(ctx, e, "pullsched is unavailable: "+err.Error(), d.Done)
				}
				return // shutting down: the next owner reads it again
			}
			b.cnt.arrivals.Add(1)
			d.Done()
		})
	}
}

// healthTest sends a controller's health-test activation straight to a
// healthy invoker: it tests the facade, which is healthy while any invoker
// is.
func (b *Bridge) healthTest(ctx context.Context, d *consumer.Delivery, m *ActivationMessage, raw []byte, now time.Time) {
	_, fresh, _ := b.book.add(newEntry(m, now, now.Add(b.cfg.forcedAckAfter(b.cfg.DefaultTimeout))))
	if !fresh {
		b.cnt.duplicates.Add(1)
		d.Done()
		return
	}
	inv, ok := b.healthyInvoker(now)
	if !ok {
		b.cnt.noHealthy.Add(1)
		b.log.Warn().Str("id", m.ActivationID).Msg("health test dropped: no healthy invoker")
		d.Done()
		return
	}
	b.book.with(m.ActivationID, func(e *entry) { e.worker, e.assignedAt = WorkerID(inv), now })
	b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.invokerTopic(inv), Value: raw}, func(err error) {
		if err != nil {
			b.cnt.publishErrors.Add(1)
			b.log.Warn().Err(err).Str("id", m.ActivationID).Msg("health test not sent")
		} else {
			b.cnt.healthTests.Add(1)
		}
		d.Done()
	})
}

// healthyInvoker returns the live, enabled, healthy invoker with the fewest
// activations in flight.
func (b *Bridge) healthyInvoker(now time.Time) (int, bool) {
	infl := b.book.inflight()
	b.mu.Lock()
	defer b.mu.Unlock()
	best, bestLoad := -1, 0
	for n, inv := range b.invokers {
		if !b.live(inv, now) || !inv.enabled || inv.systemErrors(now, b.cfg.ErrorMemory) > b.cfg.UnhealthyErrors {
			continue
		}
		load := 0
		for _, k := range infl[inv.id] {
			load += k
		}
		if best < 0 || load < bestLoad || load == bestLoad && n < best {
			best, bestLoad = n, load
		}
	}
	return best, best >= 0
}

func (b *Bridge) live(inv *invoker, now time.Time) bool {
	return now.Sub(inv.last) <= b.cfg.InvokerTimeout
}

// synthetic answers e's controller in OpenWhisk's own shape — a combined
// ack shrunk to the id for a non-blocking activation, one carrying a
// whisk-error activation for a blocking one — unless e was answered
// already; done is called once the ack is written (or failed).
func (b *Bridge) synthetic(ctx context.Context, e *entry, msg string, done func()) {
	send := false
	var snap entry
	b.book.with(e.id, func(cur *entry) {
		if cur != nil && !cur.answered {
			cur.answer(b.now())
			send, snap = true, *cur
		}
	})
	if !send {
		done()
		return
	}
	ack := b.syntheticAck(&snap, msg, b.now())
	v, err := ack.Encode()
	if err != nil { // cannot happen for the acks built here
		b.log.Error().Err(err).Str("id", e.id).Msg("synthetic ack not encoded")
		done()
		return
	}
	b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.controllerAcks(snap.controller), Value: v}, func(err error) {
		if err != nil {
			b.cnt.publishErrors.Add(1)
			b.log.Warn().Err(err).Str("id", snap.id).Msg("synthetic ack not written")
		} else {
			b.cnt.synthetic.Add(1)
		}
		done()
	})
}

// syntheticAck builds the ack that answers e with a whisk error.
func (b *Bridge) syntheticAck(e *entry, msg string, now time.Time) *Ack {
	f := false
	inst := b.facade()
	a := &Ack{Kind: AckCombined, TransID: e.transid, ActivationID: e.id, IsSystemError: &f, Instance: &inst}
	if !e.blocking {
		a.ResponseID = e.id
		return a
	}
	result, _ := json.Marshal(map[string]string{"error": msg})
	path, _ := json.Marshal(e.action.String())
	version := e.action.Version
	if version == "" {
		version = "0.0.1"
	}
	start, end := e.arrived.UnixMilli(), now.UnixMilli()
	dur := end - start
	a.Activation = &WhiskActivation{
		Namespace: e.namespace, Name: e.action.Name, Subject: e.subject, ActivationID: e.id,
		Start: start, End: end, Response: ActivationResponse{StatusCode: StatusWhiskError, Result: result},
		Logs: json.RawMessage("[]"), Version: version,
		Annotations: []Annotation{{Key: "path", Value: path}}, Duration: &dur,
	}
	return a
}

// handleResults answers, with a synthetic ack, activations the scheduler
// rejected or timed out before assigning them. An assigned activation is
// answered by its invoker (or, if the invoker died, by the controller's
// forced ack).
func (b *Bridge) handleResults(ctx context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		r := d.Event.(*topics.Result)
		id := ActivationIDOf(r.ID)
		var e *entry
		known := false
		b.book.with(id, func(cur *entry) {
			known = cur != nil
			if cur != nil && !cur.answered && cur.worker == "" && r.Worker == "" {
				e = cur
			}
		})
		if !known {
			b.cnt.unanswerable.Add(1)
			b.log.Warn().Str("id", id).Str("reason", r.Reason).Msg("scheduler answered an activation this bridge does not know; the controller's forced ack will answer it")
		}
		if e == nil {
			d.Done()
			continue
		}
		msg := fmt.Sprintf("pullsched could not run the activation (%s, %d)", r.Reason, r.Status)
		if r.Error != "" {
			msg += ": " + r.Error
		}
		b.synthetic(ctx, e, msg, d.Done)
	}
}
