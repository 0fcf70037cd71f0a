package invokerbridge

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/trace"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/tracing"
)

// The bridge's part of an activation's trace (package tracing): the
// assignment's wait — in Kafka and for a free slot — and the invoke span
// around the call and the publishing of its completion and result, with
// the HTTP call to the worker as its child (the client's transport, see
// New). The completion and result records carry the invoke span's context.
// With tracing off these helpers return at once and allocate nothing.

// traceStart records a's wait and opens its invoke span, in the trace its
// record carries. It returns the context the call runs under.
func (r *runner) traceStart(a *topics.Assignment, d *consumer.Delivery) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return r.callCtx, nil
	}
	return tracing.Received(r.callCtx, d.Record, tracing.SpanAssignmentWait, tracing.SpanInvoke,
		tracing.AttrActivation.String(a.ID), tracing.AttrFunction.String(a.Function), tracing.AttrWorker.String(r.w.id))
}

// publishCtx is the context a call's completion and result are published
// under: never cancelled (a call's answer is published even while the
// bridge drains), carrying s when tracing is on.
func publishCtx(s trace.Span) context.Context { return tracing.WithSpan(context.Background(), s) }

// traceEnd ends the invoke span with what the call came to.
func traceEnd(s trace.Span, o outcome, published bool) {
	if s == nil {
		return
	}
	s.SetAttributes(tracing.AttrStatus.Int(o.result), tracing.AttrOutcome.String(string(o.start)))
	msg := o.errMsg
	if msg == "" && o.result >= 500 {
		msg = "status " + strconv.Itoa(o.result)
	}
	if !published && msg == "" {
		msg = "completion not published"
	}
	tracing.End(s, msg)
}
