package tracing

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestWanted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flag    bool
		env     map[string]string
		want    bool
		wantErr string
	}{
		{name: "nothing set", want: false},
		{name: "flag", flag: true, want: true},
		{name: "exporter otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: true},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, want: true},
		{name: "exporter none beats flag", flag: true, env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}, want: false},
		{name: "sdk disabled beats endpoint", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: false},
		{name: "http protobuf", flag: true, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, want: true},
		{name: "grpc refused", flag: true, env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantErr: "grpc"},
		{name: "grpc for traces refused", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, wantErr: "grpc"},
		{name: "grpc ignored while off", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: false},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "zipkin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Wanted(Config{Flag: tc.flag, Getenv: func(k string) string { return tc.env[k] }})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Wanted = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestSetupOffIsNoop(t *testing.T) {
	stop, err := Setup(context.Background(), Config{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if Enabled() {
		t.Fatal("tracing on without being asked")
	}
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestOffCostsNothing: with tracing off, the hooks the parts call per
// record neither touch the record nor allocate.
func TestOffCostsNothing(t *testing.T) {
	r := &kgo.Record{Topic: "t", Value: []byte("v"), Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		Inject(ctx, r)
		c, s := Received(ctx, r, SpanArrivalWait, SpanSchedule)
		End(s, "")
		_ = WithSpan(c, s)
		_ = Extract(ctx, r)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per record with tracing off", allocs)
	}
	if len(r.Headers) != 1 {
		t.Fatalf("headers changed with tracing off: %v", r.Headers)
	}
}

func use(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	restore := Use(tp)
	t.Cleanup(restore)
	return rec
}

func TestRecordHopKeepsTheTrace(t *testing.T) {
	rec := use(t)
	ctx, parent := Start(context.Background(), SpanIngress)
	r := &kgo.Record{Topic: "arrivals", Timestamp: time.Now().Add(-50 * time.Millisecond)}
	Inject(ctx, r)
	Inject(ctx, r) // again: replaced, not added
	if len(r.Headers) != 1 || r.Headers[0].Key != "traceparent" {
		t.Fatalf("headers %v, want one traceparent", r.Headers)
	}
	parent.End()

	_, work := Received(context.Background(), r, SpanArrivalWait, SpanSchedule)
	End(work, "boom")

	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = s
	}
	root, wait, sched := byName[SpanIngress], byName[SpanArrivalWait], byName[SpanSchedule]
	if root == nil || wait == nil || sched == nil {
		t.Fatalf("spans %v", byName)
	}
	for _, s := range []sdktrace.ReadOnlySpan{wait, sched} {
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() || s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("%s: trace %s parent %s, want a child of %s", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID(), root.SpanContext().SpanID())
		}
	}
	if d := wait.EndTime().Sub(wait.StartTime()); d < 50*time.Millisecond {
		t.Errorf("wait span lasted %v, want it to start at the record's timestamp", d)
	}
	if wait.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("wait span kind %v", wait.SpanKind())
	}
	if sched.Status().Description != "boom" {
		t.Errorf("status %+v", sched.Status())
	}
}

func TestRecordWithoutContextStartsOneTrace(t *testing.T) {
	rec := use(t)
	r := &kgo.Record{Topic: "arrivals", Timestamp: time.Now().Add(time.Hour)} // a clock ahead
	_, work := Received(context.Background(), r, SpanArrivalWait, SpanSchedule)
	work.End()
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	wait, sched := spans[0], spans[1]
	if sched.Parent().SpanID() != wait.SpanContext().SpanID() || sched.SpanContext().TraceID() != wait.SpanContext().TraceID() {
		t.Fatal("the work did not join the wait's new trace")
	}
	if wait.EndTime().Before(wait.StartTime()) {
		t.Fatal("negative wait")
	}
}

func TestTransportTracesOnlyUnderASpan(t *testing.T) {
	rec := use(t)
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("traceparent"))
	}))
	defer srv.Close()
	cl := &http.Client{Transport: Transport(http.DefaultTransport, SpanWorkerCall)}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/status", nil)
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, parent := Start(context.Background(), SpanInvoke)
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/run/f", nil)
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parent.End()

	if len(got) != 2 || got[0] != "" || !strings.Contains(got[1], parent.SpanContext().TraceID().String()) {
		t.Fatalf("traceparents the server saw: %q", got)
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	if strings.Join(names, ",") != SpanWorkerCall+","+SpanInvoke {
		t.Fatalf("spans %v", names)
	}
}
