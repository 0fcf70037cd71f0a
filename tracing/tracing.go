package tracing

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of pullsched's spans.
const ScopeName = "github.com/pullsched/pullsched"

// Span names, one per step of an activation.
const (
	SpanIngress        = "ingress"
	SpanArrivalWait    = "arrival wait"
	SpanSchedule       = "schedule"
	SpanAssignmentWait = "assignment wait"
	SpanInvoke         = "invoke"
	SpanWorkerCall     = "worker call"
	SpanResultWait     = "result wait"
)

// Attribute keys pullsched sets on its spans, besides OpenTelemetry's
// messaging and HTTP ones.
const (
	AttrActivation = attribute.Key("pullsched.activation_id")
	AttrFunction   = attribute.Key("pullsched.function")
	AttrWorker     = attribute.Key("pullsched.worker")
	AttrOutcome    = attribute.Key("pullsched.outcome")
	AttrStatus     = attribute.Key("pullsched.status")
)

// state is what Setup or Use installed; nil while tracing is off.
type state struct {
	tp     trace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

var cur atomic.Pointer[state]

// Enabled reports whether tracing is on. Parts check it before doing any
// tracing work, so that tracing off costs one atomic load.
func Enabled() bool { return cur.Load() != nil }

// Propagator is the W3C trace-context and baggage propagator pullsched
// uses on HTTP and records.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Use turns tracing on with tp (a test's provider with an in-memory
// exporter, or one the embedding program built) and Propagator. It also
// installs tp and the propagator as OpenTelemetry's globals. The returned
// function turns tracing off again and restores the previous globals; it
// does not shut tp down.
func Use(tp trace.TracerProvider) (restore func()) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	prop := Propagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	cur.Store(&state{tp: tp, tracer: tp.Tracer(ScopeName), prop: prop})
	return func() {
		cur.Store(nil)
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	}
}

// Inject writes the trace context of ctx's span into r's headers
// (traceparent, tracestate), replacing any it had. It does nothing while
// tracing is off or when ctx carries no valid span context.
func Inject(ctx context.Context, r *kgo.Record) {
	st := cur.Load()
	if st == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	st.prop.Inject(ctx, kotel.NewRecordCarrier(r))
}

// Extract returns ctx with the remote span context r's headers carry (ctx
// unchanged while tracing is off or when they carry none).
func Extract(ctx context.Context, r *kgo.Record) context.Context {
	st := cur.Load()
	if st == nil {
		return ctx
	}
	return st.prop.Extract(ctx, kotel.NewRecordCarrier(r))
}

// Received records r's wait in Kafka as the span wait — from the record's
// timestamp (its producer's clock, in Kafka's milliseconds) until now — as
// a child of the trace
// context in its headers (a new trace when there is none), then starts the
// span name for the work the record starts, a child of the same context.
// The caller ends the returned span (End accepts nil). While tracing is
// off it returns ctx and nil and allocates nothing.
func Received(ctx context.Context, r *kgo.Record, wait, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	st := cur.Load()
	if st == nil {
		return ctx, nil
	}
	ctx = st.prop.Extract(ctx, kotel.NewRecordCarrier(r))
	now := time.Now()
	produced := r.Timestamp
	if produced.IsZero() || produced.After(now) {
		produced = now // clocks of producer and consumer disagree: no negative waits
	}
	// When the record's context was not sampled, spans under it are not
	// recorded either (the parent-based sampler decides), but the context
	// still flows on.
	_, ws := st.tracer.Start(ctx, wait, trace.WithTimestamp(produced), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(messagingAttrs(r)...), trace.WithAttributes(attrs...))
	ws.End(trace.WithTimestamp(now))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		// No context came with the record: the wait span began a new trace;
		// the work joins it.
		ctx = trace.ContextWithSpan(ctx, ws)
	}
	return st.tracer.Start(ctx, name, trace.WithTimestamp(now), trace.WithAttributes(attrs...))
}

// Waiting starts span name at r's timestamp (its producer's clock) as a
// child of the trace context in r's headers, and leaves it to the caller
// to end (End accepts nil): a wait that lasts beyond the record's reading,
// as a result's until it is handed to its request. While tracing is off it
// returns nil and allocates nothing.
func Waiting(ctx context.Context, r *kgo.Record, name string, attrs ...attribute.KeyValue) trace.Span {
	st := cur.Load()
	if st == nil {
		return nil
	}
	ctx = st.prop.Extract(ctx, kotel.NewRecordCarrier(r))
	produced := r.Timestamp
	if now := time.Now(); produced.IsZero() || produced.After(now) {
		produced = now
	}
	_, s := st.tracer.Start(ctx, name, trace.WithTimestamp(produced), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(messagingAttrs(r)...), trace.WithAttributes(attrs...))
	return s
}

// messagingAttrs are OpenTelemetry's messaging attributes of r.
func messagingAttrs(r *kgo.Record) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.destination.name", r.Topic),
		attribute.Int("messaging.destination.partition.id", int(r.Partition)),
		attribute.Int64("messaging.kafka.offset", r.Offset),
	}
}

// Start starts span name as a child of ctx's span. While tracing is off it
// returns ctx and nil.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	st := cur.Load()
	if st == nil {
		return ctx, nil
	}
	return st.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// WithSpan returns ctx carrying s (ctx itself when s is nil), so that
// records published under it carry s's context.
func WithSpan(ctx context.Context, s trace.Span) context.Context {
	if s == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, s)
}

// End ends s, marking it failed with errMsg when errMsg is not empty. A nil
// s is ignored.
func End(s trace.Span, errMsg string) {
	if s == nil {
		return
	}
	if errMsg != "" {
		s.SetStatus(codes.Error, errMsg)
	}
	s.End()
}

// Handler wraps the ingress handler h so that each request runs in a
// server span named name, a child of the request's traceparent when it
// has one. While tracing is off (when Handler is called) it returns h.
func Handler(h http.Handler, name string) http.Handler {
	st := cur.Load()
	if st == nil {
		return h
	}
	return otelhttp.NewHandler(h, name, otelhttp.WithTracerProvider(st.tp), otelhttp.WithPropagators(st.prop),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return name }))
}

// Transport wraps base so that a request made under a span runs in a
// client span named name and carries its traceparent to the server.
// Requests made under no span (health probes) go to base untraced, so they
// do not start traces of their own. While tracing is off (when Transport
// is called) it returns base.
func Transport(base http.RoundTripper, name string) http.RoundTripper {
	st := cur.Load()
	if st == nil {
		return base
	}
	traced := otelhttp.NewTransport(base, otelhttp.WithTracerProvider(st.tp), otelhttp.WithPropagators(st.prop),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return name }))
	return &spanTransport{base: base, traced: traced}
}

type spanTransport struct {
	base, traced http.RoundTripper
}

func (t *spanTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if trace.SpanContextFromContext(r.Context()).IsValid() {
		return t.traced.RoundTrip(r)
	}
	return t.base.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach base.
func (t *spanTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
