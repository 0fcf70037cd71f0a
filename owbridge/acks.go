package owbridge

// The acks role: invoker acks go to the controllers, rewritten, and become
// pullsched completions.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
)

// handleAcks forwards every invoker ack to its controller with the
// facade's instance and no system error, and turns slot-freeing acks into
// pullsched completions.
func (b *Bridge) handleAcks(ctx context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		ev := d.Event.(*ackEvent)
		a := ev.ack
		now := b.now()
		fwd, err := RewriteAck(ev.raw, a.InstanceField, b.facade(), false)
		if err != nil { // DecodeAck read it, so it is an object
			b.log.Error().Err(err).Str("id", a.ActivationID).Msg("ack not rewritten")
			d.Done()
			continue
		}
		if a.SlotFree() && a.Instance != nil {
			b.noteAck(a.Instance.Instance, a.SystemError())
		}
		comp := b.completionFor(a, now)
		if comp != nil {
			if n, ok := InvokerOf(comp.Worker); ok {
				mem, _ := b.limitsOf(comp.Function)
				// Status codes 2 and 3 (not OK) destroy the container.
				fn, keep := comp.Function, comp.OK
				b.evicted(ctx, n, b.poolOp(n, func(p *shadowPool) []string { return p.complete(fn, mem, keep, now) }), now)
			}
		}
		forward := func() {
			b.prod.ProduceAsync(ctx, &kgo.Record{Topic: b.cfg.controllerAcks(ev.controller), Value: fwd}, func(err error) {
				if err != nil {
					b.cnt.publishErrors.Add(1)
					b.log.Warn().Err(err).Str("id", a.ActivationID).Msg("ack not forwarded")
				} else {
					b.cnt.forwarded.Add(1)
				}
				d.Done()
			})
		}
		if comp == nil {
			forward()
			continue
		}
		// The completion first, the ack once it is written: a controller
		// that sends the action again as soon as it has the answer (a
		// sequence, a client calling in a loop) finds the scheduler
		// already knowing the warm container.
		b.prod.PublishAsync(ctx, b.names.WorkerEvents(), comp, func(err error) {
			if err != nil {
				b.cnt.publishErrors.Add(1)
				b.log.Warn().Err(err).Str("id", a.ActivationID).Msg("completion not published")
			} else {
				b.cnt.completions.Add(1)
			}
			go forward() // not from the producer's callback, which must not block
		})
	}
}

// completionFor books ack a and returns the pullsched completion it
// makes, or nil (a result-only ack, a health test, a duplicate, or an
// activation the bridge cannot name).
func (b *Bridge) completionFor(a *Ack, now time.Time) *topics.Completion {
	var comp *topics.Completion
	var fn string
	known := false
	b.book.with(a.ActivationID, func(e *entry) {
		if e == nil {
			return
		}
		known, fn = true, e.fn
		status, start := e.status, e.start
		if a.Activation != nil {
			status = a.Activation.Response.StatusCode
			start = startOf(a.Activation)
		}
		if !a.SlotFree() {
			e.status, e.start = status, start
			return
		}
		if e.health || e.answered && e.worker == "" {
			e.answer(now)
			return
		}
		if e.answered { // a re-delivered ack: completed already
			b.cnt.duplicates.Add(1)
			return
		}
		e.answer(now)
		worker := e.worker
		if worker == "" && a.Instance != nil {
			worker = WorkerID(a.Instance.Instance)
		}
		comp = b.completion(a, e.fn, worker, status, start, e.assignedAt, now)
	})
	if !known && a.SlotFree() {
		// Not in the book (the bridge restarted): a record names its
		// function; a bare completion does not.
		if act := a.Activation; act != nil && a.Instance != nil {
			if fa, ok := actionOf(act); ok {
				fn = FunctionKey(act.Namespace, fa)
				comp = b.completion(a, fn, WorkerID(a.Instance.Instance), act.Response.StatusCode, startOf(act), time.Time{}, now)
			}
		}
		if comp == nil {
			b.cnt.unknownAcks.Add(1)
		}
	}
	if a.Activation != nil && fn == "" {
		if fa, ok := actionOf(a.Activation); ok {
			fn = FunctionKey(a.Activation.Namespace, fa)
		}
	}
	b.learn(fn, a.Activation)
	return comp
}

func (b *Bridge) completion(a *Ack, fn, worker string, status int, start topics.Start, assigned, now time.Time) *topics.Completion {
	sysErr := a.SystemError()
	ok := !sysErr && (status == StatusSuccess || status == StatusApplicationError || status < 0)
	var dur float64
	switch {
	case a.Activation != nil && a.Activation.Duration != nil:
		dur = float64(*a.Activation.Duration)
	case a.Activation != nil && a.Activation.End >= a.Activation.Start:
		dur = float64(a.Activation.End - a.Activation.Start)
	case !assigned.IsZero():
		dur = float64(now.Sub(assigned)) / float64(time.Millisecond)
	}
	c := &topics.Completion{ID: EventID(a.ActivationID), Function: fn, Worker: worker, OK: ok, Start: start,
		DurationMs: max(dur, 0), At: now}
	if !ok {
		c.Error = fmt.Sprintf("openwhisk status %d, system error %t", status, sysErr)
	}
	if c.Validate() != nil {
		return nil
	}
	return c
}

// startOf reads cold or warm from a record's initTime annotation: present
// on a cold start only.
func startOf(a *WhiskActivation) topics.Start {
	if a == nil {
		return topics.StartUnknown
	}
	if a.InitTimeMs() >= 0 {
		return topics.StartCold
	}
	return topics.StartWarm
}

// actionOf names a record's action from its path annotation
// ("namespace/[package/]name") and version.
func actionOf(a *WhiskActivation) (FullyQualifiedEntityName, bool) {
	var path string
	if v := a.Annotation("path"); v == nil || json.Unmarshal(v, &path) != nil {
		return FullyQualifiedEntityName{}, false
	}
	var f FullyQualifiedEntityName
	raw, _ := json.Marshal(path)
	if f.UnmarshalJSON(raw) != nil {
		return FullyQualifiedEntityName{}, false
	}
	f.Version = a.Version
	return f, true
}

// noteAck records whether an invoker's slot-freeing ack was a system error.
func (b *Bridge) noteAck(n int, sysErr bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if inv := b.invokers[n]; inv != nil {
		inv.errs[inv.errPos] = time.Time{}
		if sysErr {
			inv.errs[inv.errPos] = b.now()
		}
		inv.errPos = (inv.errPos + 1) % len(inv.errs)
	}
}
