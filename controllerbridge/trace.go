package controllerbridge

import (
	"context"
	"net/http"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/tracing"
)

// The controller's part of an activation's trace (package tracing): the
// ingress span of a /run request (an incoming traceparent is its parent),
// whose context the arrival record carries, and the result's way back,
// from the result record's production until it is handed to the request.
// With tracing off these helpers return at once and allocate nothing.

// traceIngress wraps the /run handler in the ingress span.
func traceIngress(h http.Handler) http.Handler { return tracing.Handler(h, tracing.SpanIngress) }

// traceResult opens the result-wait span of res, read from r.
func traceResult(r *kgo.Record, res *topics.Result) trace.Span {
	if !tracing.Enabled() {
		return nil
	}
	return tracing.Waiting(context.Background(), r, tracing.SpanResultWait,
		tracing.AttrActivation.String(res.ID), tracing.AttrFunction.String(res.Function),
		tracing.AttrWorker.String(res.Worker), tracing.AttrStatus.Int(res.Status))
}

// traceDelivered ends the result-wait span with what became of the result.
func traceDelivered(s trace.Span, out outcome) {
	if s == nil {
		return
	}
	s.SetAttributes(tracing.AttrOutcome.String(string(out)))
	s.End()
}
