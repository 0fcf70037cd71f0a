package scheduler

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pullsched/pullsched/tracing"
)

// With tracing on, the core records each arrival's wait and a schedule
// span that ends at the assignment's acknowledgement, at the scheduler's
// own answer, or when the partition is revoked; the records it queues carry
// the schedule span's context (the producer puts it in their headers).
func TestCoreTraces(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	defer tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))()

	r := newCoreRig(t, []int32{0}, nil)
	r.arrive("rejected", "f", time.Time{}) // no worker in rotation: 503
	rejected := r.answer(nil)
	r.worker("w1", 1)
	r.arrive("placed", "f", time.Time{})
	queued := r.flush()
	r.arrive("pending", "f", time.Time{}) // the one slot is taken
	for _, e := range queued {
		e.done(nil)
	}
	r.st.afterChanges()
	r.st.revoked(map[string][]int32{r.st.names.Arrivals(): {0}, r.st.names.WorkerEvents(): {0}})

	schedule := map[string]sdktrace.ReadOnlySpan{}
	waits := 0
	for _, s := range rec.Ended() {
		switch s.Name() {
		case tracing.SpanArrivalWait:
			waits++
		case tracing.SpanSchedule:
			for _, a := range s.Attributes() {
				if a.Key == tracing.AttrActivation {
					schedule[a.Value.AsString()] = s
				}
			}
		}
	}
	if waits != 3 || len(schedule) != 3 {
		t.Fatalf("%d arrival waits and schedule spans of %v, want 3 of each", waits, schedule)
	}
	attr := func(s sdktrace.ReadOnlySpan, k string) string {
		for _, a := range s.Attributes() {
			if string(a.Key) == k {
				return a.Value.Emit()
			}
		}
		return ""
	}
	if s := schedule["placed"]; s.Status().Code == codes.Error || attr(s, "pullsched.worker") != "w1" || attr(s, "pullsched.outcome") == "" {
		t.Errorf("placed: status %v, attributes %v", s.Status(), s.Attributes())
	}
	if s := schedule["rejected"]; s.Status().Code != codes.Error || attr(s, "pullsched.status") != "503" {
		t.Errorf("rejected: status %v, attributes %v", s.Status(), s.Attributes())
	}
	s := schedule["pending"]
	if s.Status().Code != codes.Error || len(s.Events()) != 1 || s.Events()[0].Name != OutcomePending {
		t.Errorf("pending then revoked: status %v, events %v", s.Status(), s.Events())
	}
	for id, es := range map[string][]effect{"placed": queued, "rejected": rejected} {
		if len(es) != 1 {
			t.Fatalf("%s: %d records queued", id, len(es))
		}
		got := trace.SpanContextFromContext(es[0].ctx)
		if got.SpanID() != schedule[id].SpanContext().SpanID() {
			t.Errorf("%s: its record is published under span %s, want the schedule span %s", id, got.SpanID(), schedule[id].SpanContext().SpanID())
		}
	}
}

// With tracing off the core queues its records under its own context and
// makes no span.
func TestCoreTracesNothingWhenOff(t *testing.T) {
	r := newCoreRig(t, []int32{0}, nil)
	r.worker("w1", 1)
	r.arrive("placed", "f", time.Time{})
	for _, e := range r.flush() {
		if trace.SpanContextFromContext(e.ctx).IsValid() || e.ctx != r.st.ctx && e.ctx != context.Background() {
			t.Errorf("record queued under %v", e.ctx)
		}
	}
	for _, j := range r.st.jobs {
		if j.span != nil {
			t.Errorf("job %s has a span with tracing off", j.a.ID)
		}
	}
}
