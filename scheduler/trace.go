package scheduler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/pullsched/pullsched/tracing"
)

// The scheduler's part of an activation's trace (package tracing): the
// arrival's wait in Kafka, and the schedule span from taking the arrival
// to the broker's acknowledgement of its assignment, or to its rejection.
// The assignment and result records carry the schedule span's context.
// With tracing off every helper here returns at once and allocates nothing.

// traceStart opens j's schedule span, after recording its arrival's wait
// in Kafka, both in the trace its record carries.
func (st *state) traceStart(j *job, rec *kgo.Record) {
	if !tracing.Enabled() {
		return
	}
	_, j.span = tracing.Received(st.ctx, rec, tracing.SpanArrivalWait, tracing.SpanSchedule,
		tracing.AttrActivation.String(j.a.ID), tracing.AttrFunction.String(j.a.Function),
		attribute.String("pullsched.policy", st.pname))
}

// traceCtx returns ctx carrying j's span, for the records j's decision
// publishes.
func (j *job) traceCtx(ctx context.Context) context.Context { return tracing.WithSpan(ctx, j.span) }

// traceEvent notes a step of j's wait (pending, held) on its span.
func (j *job) traceEvent(name string) {
	if j.span != nil {
		j.span.AddEvent(name)
	}
}

// traceAssigned notes the worker j goes to and returns the context its
// assignment is published under.
func (st *state) traceAssigned(j *job, outcome string) context.Context {
	if j.span == nil {
		return st.ctx
	}
	j.span.SetAttributes(tracing.AttrWorker.String(j.worker), tracing.AttrOutcome.String(outcome))
	return trace.ContextWithSpan(st.ctx, j.span)
}

// traceAcked ends j's span once its assignment is acknowledged.
func (j *job) traceAcked() {
	tracing.End(j.span, "")
}

// traceRevoked ends j's span when its partition goes to another replica,
// which takes the arrival again (a span of its own) or adopts it.
func (j *job) traceRevoked() {
	tracing.End(j.span, "partition revoked; handed to the next owner")
}

// traceRejected ends j's span with the scheduler's own answer; the result
// record is still published under it.
func (j *job) traceRejected(status int, reason string) {
	if j.span == nil {
		return
	}
	j.span.SetAttributes(tracing.AttrOutcome.String(OutcomeRejected), tracing.AttrStatus.Int(status),
		attribute.String("pullsched.reason", reason))
	tracing.End(j.span, reason)
}
