package tracing_test

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pullsched/pullsched/cluster"
	"github.com/pullsched/pullsched/tracing"
	"github.com/pullsched/pullsched/workersim"
)

// steps are the spans every answered activation has, in trace order.
var steps = []string{
	tracing.SpanIngress, tracing.SpanArrivalWait, tracing.SpanSchedule, tracing.SpanAssignmentWait,
	tracing.SpanInvoke, tracing.SpanWorkerCall, tracing.SpanResultWait,
}

// TestOneTracePerActivation sends requests through the whole chain —
// controller, arrivals, scheduler, invoker.<worker>, invoker bridge, worker,
// results, controller — on the embedded broker, and checks that each
// request yields exactly one connected trace with every step's span, that
// an incoming traceparent is honoured (the ingress span is its child, in
// its trace), and that nothing else (heartbeats, health probes,
// completions) starts traces of its own.
func TestOneTracePerActivation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tracing.Use(tp)()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := cluster.Start(ctx, cluster.Config{
		Workers:          1,
		Sim:              workersim.Config{TimeScale: 0.01},
		ControllerListen: "127.0.0.1:0",
		Logger:           zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	const (
		incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		incomingSpan  = "00f067aa0ba902b7"
	)
	post := func(traceparent string) string {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cl.ControllerURL()+"/run/linpack-1", strings.NewReader(`{"n": 10}`))
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %d %s", resp.StatusCode, body)
		}
		return resp.Header.Get("X-Activation-Id")
	}
	idIn := post("00-" + incomingTrace + "-" + incomingSpan + "-01")
	idNew := post("")

	// The ingress span ends after the answer is written, the others before:
	// wait until both traces are complete.
	var traces map[trace.TraceID][]sdktrace.ReadOnlySpan
	deadline := time.Now().Add(10 * time.Second)
	for {
		traces = map[trace.TraceID][]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			traces[s.SpanContext().TraceID()] = append(traces[s.SpanContext().TraceID()], s)
		}
		complete := 0
		for _, spans := range traces {
			if missing(spans) == "" {
				complete++
			}
		}
		if complete == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(traces) != 2 {
		for id, spans := range traces {
			t.Logf("trace %s: %v", id, names(spans))
		}
		t.Fatalf("%d traces for 2 requests", len(traces))
	}

	want, _ := trace.TraceIDFromHex(incomingTrace)
	parent, _ := trace.SpanIDFromHex(incomingSpan)
	if _, ok := traces[want]; !ok {
		t.Fatalf("no trace has the incoming traceparent's id %s", incomingTrace)
	}
	for id, spans := range traces {
		if m := missing(spans); m != "" {
			t.Errorf("trace %s lacks %s; has %v", id, m, names(spans))
			continue
		}
		activation := idNew
		if id == want {
			activation = idIn
		}
		root := connected(t, spans)
		if root == nil {
			continue
		}
		if root.Name() != tracing.SpanIngress {
			t.Errorf("trace %s: root %q, want %q", id, root.Name(), tracing.SpanIngress)
		}
		if id == want && (root.Parent().SpanID() != parent || !root.Parent().IsRemote()) {
			t.Errorf("ingress span's parent %s (remote %v), want the incoming %s", root.Parent().SpanID(), root.Parent().IsRemote(), incomingSpan)
		}
		if id != want && root.Parent().IsValid() {
			t.Errorf("request without traceparent: ingress has parent %s", root.Parent().SpanID())
		}
		for _, s := range spans {
			if s.Name() != tracing.SpanSchedule && s.Name() != tracing.SpanInvoke && s.Name() != tracing.SpanResultWait {
				continue
			}
			got := ""
			for _, a := range s.Attributes() {
				if a.Key == tracing.AttrActivation {
					got = a.Value.AsString()
				}
			}
			if got != activation {
				t.Errorf("trace %s: %s span names activation %q, want %q", id, s.Name(), got, activation)
			}
		}
	}
	// The chain's order: each step's span starts no earlier than the
	// previous step's (one clock here; record timestamps are in whole
	// milliseconds, so a wait may seem to start up to 1ms early).
	spans := traces[want]
	start := map[string]time.Time{}
	for _, s := range spans {
		start[s.Name()] = s.StartTime()
	}
	for i := 1; i < len(steps); i++ {
		if start[steps[i]].Before(start[steps[i-1]].Add(-time.Millisecond)) {
			t.Errorf("%s starts before %s", steps[i], steps[i-1])
		}
	}
}

// missing names the first step without a span in spans, "" if none.
func missing(spans []sdktrace.ReadOnlySpan) string {
	have := map[string]bool{}
	for _, s := range spans {
		have[s.Name()] = true
	}
	for _, n := range steps {
		if !have[n] {
			return n
		}
	}
	return ""
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	sort.Strings(out)
	return out
}

// connected checks that spans form one tree: exactly one span's parent is
// outside the set (the root, returned), every other span's parent is in it.
func connected(t *testing.T, spans []sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	t.Helper()
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if !ids[s.Parent().SpanID()] {
			roots = append(roots, s)
		}
	}
	if len(roots) != 1 {
		t.Errorf("%d roots (%v) in trace %s: not one connected trace", len(roots), names(roots), spans[0].SpanContext().TraceID())
		return nil
	}
	return roots[0]
}
