package controllerbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// echo answers with the payload, cold the first time a function is seen on
// worker w1 and warm afterwards.
func echo() func(context.Context, *topics.Arrival) []*topics.Result {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(_ context.Context, a *topics.Arrival) []*topics.Result {
		mu.Lock()
		start := topics.StartWarm
		if !seen[a.Function] {
			start = topics.StartCold
			seen[a.Function] = true
		}
		mu.Unlock()
		return []*topics.Result{ok(a, "w1", start, a.Payload, "application/json")}
	}
}

func TestRunHappyPath(t *testing.T) {
	h := start(t, nil)
	startFake(t, h, echo())

	resp, body, err := send("POST", h.base+"/run/echo-1", [][2]string{{HeaderIdempotencyKey, "k1"}}, `{"x": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != `{"x": 1}` {
		t.Fatalf("first call: %d %s", resp.StatusCode, body)
	}
	id := resp.Header.Get(HeaderActivationID)
	if _, err := uuid.Parse(id); err != nil {
		t.Errorf("X-Activation-Id %q: %v", id, err)
	}
	if w := resp.Header.Get(HeaderWorker); w != "w1" {
		t.Errorf("X-Worker %q", w)
	}
	if c := resp.Header.Get(HeaderColdStart); c != "1" {
		t.Errorf("first call X-Cold-Start %q, want 1", c)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}

	// GET without a body runs with {}; the second call is warm.
	resp, body = call(t, "GET", h.base+"/run/echo-1?timeout=30s&class=2", "", "")
	if resp.StatusCode != 200 || string(body) != `{}` {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	if c := resp.Header.Get(HeaderColdStart); c != "0" {
		t.Errorf("second call X-Cold-Start %q, want 0", c)
	}
	if resp.Header.Get(HeaderActivationID) == id {
		t.Error("two calls got the same activation id")
	}

	// A blocking activation with an Idempotency-Key can be fetched again
	// afterwards.
	resp, body = call(t, "GET", h.base+"/activations/"+id, "", "")
	var v activationView
	if err := json.Unmarshal(body, &v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /activations: %d %s %v", resp.StatusCode, body, err)
	}
	if v.ActivationID != id || v.Status != 200 || v.Worker != "w1" || v.Start != topics.StartCold || string(v.Body) != `{"x":1}` || v.DurationMs != 12.5 {
		t.Errorf("activation view %+v", v)
	}
	if got := value(t, h.c.m.requests.WithLabelValues("200")); got != 2 {
		t.Errorf("requests_total{code=200} = %v, want 2", got)
	}
}

func TestRunArrivalFields(t *testing.T) {
	h := start(t, nil)
	got := make(chan *topics.Arrival, 1)
	startFake(t, h, func(_ context.Context, a *topics.Arrival) []*topics.Result {
		got <- a
		return []*topics.Result{ok(a, "w1", "", nil, "")}
	})
	before := time.Now()
	resp, body := call(t, "POST", h.base+"/run/f.n_1-x?timeout=90&class=3", "", `{"k": [1, 2]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get(HeaderColdStart) != "" {
		t.Errorf("X-Cold-Start %q for an unknown start", resp.Header.Get(HeaderColdStart))
	}
	a := <-got
	if a.Function != "f.n_1-x" || a.Reply != "ctl" || a.Class != 3 || string(a.Payload) != `{"k": [1, 2]}` {
		t.Errorf("arrival %+v", a)
	}
	if d := a.Deadline.Sub(a.Arrived); d != 90*time.Second {
		t.Errorf("deadline %s after arrival, want 90s", d)
	}
	if a.Arrived.Before(before.Add(-time.Second)) || a.ID != resp.Header.Get(HeaderActivationID) {
		t.Errorf("arrival %+v vs answer id %s", a, resp.Header.Get(HeaderActivationID))
	}
}

func TestRunTextAndBinaryBodies(t *testing.T) {
	h := start(t, nil)
	startFake(t, h, func(_ context.Context, a *topics.Arrival) []*topics.Result {
		switch a.Function {
		case "text":
			return []*topics.Result{ok(a, "w2", topics.StartWarm, []byte("hello\n"), "text/plain")}
		default:
			r := ok(a, "w2", topics.StartWarm, []byte{0xff, 0x00, 0x01}, "application/octet-stream")
			r.Status = 201
			return []*topics.Result{r}
		}
	})
	resp, body := call(t, "POST", h.base+"/run/text", "", "")
	if resp.StatusCode != 200 || string(body) != "hello\n" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("text: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	resp, body = call(t, "POST", h.base+"/run/bin", "", "")
	if resp.StatusCode != 201 || string(body) != "\xff\x00\x01" || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestRunBadInput(t *testing.T) {
	h := start(t, func(c *Config) { c.MaxBody = 64; c.MaxTimeout = time.Minute; c.DefaultTimeout = 30 * time.Second })
	long := strings.Repeat("a", 129)
	cases := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"bad name", "POST", "/run/bad%20name", "", 400, "bad function name"},
		{"bad name chars", "POST", "/run/a$b", "", 400, "bad function name"},
		{"name too long", "POST", "/run/" + long, "", 400, "bad function name"},
		{"body too large", "POST", "/run/f", `{"pad":"` + strings.Repeat("x", 100) + `"}`, 413, "larger than 64 bytes"},
		{"not JSON", "POST", "/run/f", `{"a":`, 400, "body is not JSON"},
		{"not JSON text", "POST", "/run/f", `hello`, 400, "invalid character"},
		{"two values", "POST", "/run/f", `{} {}`, 400, "body is not JSON"},
		{"bad timeout", "POST", "/run/f?timeout=soon", "", 400, "bad timeout"},
		{"negative timeout", "POST", "/run/f?timeout=-1s", "", 400, "must be positive"},
		{"zero timeout", "POST", "/run/f?timeout=0", "", 400, "must be positive"},
		{"timeout over max", "POST", "/run/f?timeout=2m", "", 400, "more than the maximum"},
		{"huge timeout", "POST", "/run/f?timeout=1e300", "", 400, "too large"},
		{"nanosecond timeout", "POST", "/run/f?timeout=1ns", "", 400, "less than the minimum 1ms"},
		{"sub-millisecond timeout", "POST", "/run/f?timeout=0.0009", "", 400, "less than the minimum 1ms"},
		{"bad blocking", "POST", "/run/f?blocking=maybe", "", 400, "bad blocking"},
		{"bad class", "POST", "/run/f?class=high", "", 400, "bad class"},
		{"no function", "POST", "/run/", "", 400, "want /run/<function>"},
		{"wrong method", "PUT", "/run/f", "", 405, "use POST or GET"},
		{"HEAD does not run", "HEAD", "/run/f", "", 405, ""},
		{"unknown activation", "GET", "/activations/nope", "", 404, "unknown or expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, tc.method, h.base+tc.path, "", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.method == "HEAD" {
				return // no body to check
			}
			e := jsonError(t, resp, body)
			if !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error %q does not say %q", e.Error, tc.msg)
			}
		})
	}
	if got := value(t, h.c.m.published); got != 0 {
		t.Errorf("%v arrivals published for bad input", got)
	}
}

// TestRunBodyLimits: a body is accepted up to what one arrival record can
// carry and gets 413 beyond — also under a --max-body set higher than
// that — never 503 from a record the broker or producer refuses.
func TestRunBodyLimits(t *testing.T) {
	body := func(n int64) string { return `"` + strings.Repeat("x", int(n)-2) + `"` }
	long := strings.Repeat("f", 128)
	cases := []struct {
		name    string
		maxBody int64
		fn      string
		size    int64
		status  int
		msg     string
	}{
		{"default limit", 0, "f", DefaultMaxBody, 202, ""},
		{"default limit, longest name", 0, long, DefaultMaxBody, 202, ""},
		{"over the default limit", 0, "f", DefaultMaxBody + 1, 413, "larger than"},
		{"1 MiB", 0, "f", 1 << 20, 413, "larger than"},
		{"under a raised limit, over a record", 2 << 20, "f", 1<<20 + 100, 413, "too large for one record"},
		{"raised limit, small body", 2 << 20, "f", 1000, 202, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *Config) { c.MaxBody = tc.maxBody })
			resp, b := call(t, "POST", h.base+"/run/"+tc.fn+"?blocking=false", "", body(tc.size))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, tc.status, b)
			}
			if tc.msg != "" {
				if e := jsonError(t, resp, b); !strings.Contains(e.Error, tc.msg) {
					t.Errorf("error %q does not say %q", e.Error, tc.msg)
				}
			}
		})
	}
}

func TestRunFailureResults(t *testing.T) {
	h := start(t, nil)
	reasons := map[string]string{
		"over": topics.ReasonOverloaded, "none": topics.ReasonNoWorkers,
		"late": topics.ReasonTimeout, "fail": topics.ReasonWorkerFailed,
	}
	startFake(t, h, func(_ context.Context, a *topics.Arrival) []*topics.Result {
		status := map[string]int{"over": 429, "none": 503, "late": 504, "fail": 502}[a.Function]
		r := &topics.Result{ID: a.ID, Function: a.Function, Status: status, Reason: reasons[a.Function],
			Error: "because " + a.Function, Source: "scheduler"}
		if a.Function == "fail" {
			r.Worker, r.Source = "w3", "worker"
		}
		return []*topics.Result{r}
	})
	cases := []struct {
		fn     string
		status int
	}{{"over", 429}, {"none", 503}, {"late", 504}, {"fail", 502}}
	for _, tc := range cases {
		t.Run(tc.fn, func(t *testing.T) {
			resp, body := call(t, "POST", h.base+"/run/"+tc.fn, "", "")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			e := jsonError(t, resp, body)
			if e.Reason != reasons[tc.fn] || e.Error != "because "+tc.fn || e.ActivationID != resp.Header.Get(HeaderActivationID) || e.ActivationID == "" {
				t.Errorf("error body %+v, header id %q", e, resp.Header.Get(HeaderActivationID))
			}
			ra := resp.Header.Get("Retry-After")
			if (tc.status == 429 || tc.fn == "none") && ra != "1" {
				t.Errorf("%d Retry-After %q, want 1", tc.status, ra)
			}
			if tc.status != 429 && tc.fn != "none" && ra != "" {
				t.Errorf("%d with Retry-After %q", tc.status, ra)
			}
			if tc.fn == "fail" && resp.Header.Get(HeaderWorker) != "w3" {
				t.Errorf("worker failure without X-Worker")
			}
		})
	}
}

func TestRunTimeoutWithoutResult(t *testing.T) {
	h := start(t, nil)
	release := make(chan struct{})
	startFake(t, h, func(ctx context.Context, a *topics.Arrival) []*topics.Result {
		select {
		case <-release:
		case <-ctx.Done():
			return nil
		}
		return []*topics.Result{ok(a, "w1", topics.StartCold, []byte(`{"late":true}`), "")}
	})
	resp, body := call(t, "POST", h.base+"/run/slow?timeout=200ms", "", "")
	if resp.StatusCode != 504 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := jsonError(t, resp, body)
	if e.Reason != topics.ReasonTimeout || e.ActivationID == "" {
		t.Errorf("error body %+v", e)
	}
	if n := h.c.book.waiting(); n != 0 {
		t.Errorf("%d waiters left after the timeout", n)
	}
	// The activation is remembered; its late result is kept, not lost.
	resp, body = call(t, "GET", h.base+"/activations/"+e.ActivationID, "", "")
	if resp.StatusCode != 202 || !strings.Contains(string(body), "pending") {
		t.Fatalf("before the late result: %d %s", resp.StatusCode, body)
	}
	close(release)
	eventually(t, "late result stored", func() bool {
		resp, _ := call(t, "GET", h.base+"/activations/"+e.ActivationID, "", "")
		return resp.StatusCode == 200
	})
	if got := value(t, h.c.m.results.WithLabelValues(string(outStored))); got != 1 {
		t.Errorf("results{stored} = %v, want 1", got)
	}
}

func TestRunNonBlocking(t *testing.T) {
	h := start(t, nil)
	release := make(chan struct{})
	startFake(t, h, func(ctx context.Context, a *topics.Arrival) []*topics.Result {
		select {
		case <-release:
		case <-ctx.Done():
			return nil
		}
		return []*topics.Result{ok(a, "w4", topics.StartWarm, []byte(`{"done":1}`), "")}
	})
	resp, body := call(t, "POST", h.base+"/run/job?blocking=false", "", `{"a":1}`)
	if resp.StatusCode != 202 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var acc struct {
		ID string `json:"activation_id"`
	}
	if err := json.Unmarshal(body, &acc); err != nil || acc.ID == "" {
		t.Fatalf("202 body %s: %v", body, err)
	}
	if loc := resp.Header.Get("Location"); loc != "/activations/"+acc.ID {
		t.Errorf("Location %q", loc)
	}
	if n := h.c.book.waiting(); n != 0 {
		t.Errorf("a non-blocking request left %d waiters", n)
	}
	resp, body = call(t, "GET", h.base+"/activations/"+acc.ID, "", "")
	if resp.StatusCode != 202 || !strings.Contains(string(body), `"pending"`) {
		t.Fatalf("pending: %d %s", resp.StatusCode, body)
	}
	close(release)
	var v activationView
	eventually(t, "result fetched", func() bool {
		resp, body := call(t, "GET", h.base+"/activations/"+acc.ID, "", "")
		if resp.StatusCode != 200 {
			return false
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if v.Status != 200 || v.Worker != "w4" || string(v.Body) != `{"done":1}` || v.Start != topics.StartWarm {
		t.Errorf("activation view %+v", v)
	}
}

func TestRunDuplicateResultsIgnored(t *testing.T) {
	h := start(t, nil)
	startFake(t, h, func(_ context.Context, a *topics.Arrival) []*topics.Result {
		return []*topics.Result{
			ok(a, "w1", topics.StartCold, []byte(`{"n":1}`), ""),
			ok(a, "w2", topics.StartCold, []byte(`{"n":2}`), ""),
		}
	})
	resp, body := call(t, "POST", h.base+"/run/dup", "", "")
	if resp.StatusCode != 200 || string(body) != `{"n":1}` || resp.Header.Get(HeaderWorker) != "w1" {
		t.Fatalf("%d %s %s", resp.StatusCode, body, resp.Header.Get(HeaderWorker))
	}
	eventually(t, "duplicate counted", func() bool {
		return value(t, h.c.m.results.WithLabelValues(string(outDuplicate))) == 1
	})
	// Once answered, a blocking request's result is not kept.
	if resp, body := call(t, "GET", h.base+"/activations/"+resp.Header.Get(HeaderActivationID), "", ""); resp.StatusCode != 404 {
		t.Errorf("answered result still kept: %d %s", resp.StatusCode, body)
	}
}

func TestUnknownResultIgnored(t *testing.T) {
	h := start(t, nil)
	// A result for an activation this controller never saw is counted, not
	// delivered anywhere.
	r := &topics.Result{ID: topics.NewID(), Status: 200}
	if err := h.prod.Publish(context.Background(), h.cfg.Topics.Names().Results("ctl"), r); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unknown result counted", func() bool {
		return value(t, h.c.m.results.WithLabelValues(string(outUnknown))) == 1
	})
}

// TestUndecodableResultDeadLettered: an undecodable result goes to the dlq
// with its own headers and the reason; one too large to copy goes as a
// reference to it, not nowhere.
func TestUndecodableResultDeadLettered(t *testing.T) {
	huge := make([]byte, topics.MaxMessageBytes-producer.BatchBytes(&kgo.Record{Key: []byte("k"),
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}}))
	for _, tc := range []struct {
		name  string
		value []byte
		ref   bool
	}{
		{"small", []byte("not json"), false},
		{"too large to copy", huge, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, nil)
			n := h.cfg.Topics.Names()
			rec := &kgo.Record{Topic: n.Results("ctl"), Key: []byte("k"), Value: tc.value,
				Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}}
			if err := h.prod.Client().ProduceSync(context.Background(), rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "bad result counted", func() bool { return value(t, h.c.m.badRecs) == 1 })
			want := consumer.DeadLetterCounts{Letters: 1}
			if tc.ref {
				want.References = 1
			}
			eventually(t, "dead letter counted", func() bool { return h.c.deadLetterCounts() == want })
			if _, b := call(t, "GET", h.base+"/metrics", "", ""); !strings.Contains(string(b), "\npullsched_controller_dead_letters_total 1\n") ||
				!strings.Contains(string(b), fmt.Sprintf("\npullsched_controller_dead_letter_references_total %d\n", want.References)) ||
				!strings.Contains(string(b), "\npullsched_controller_dead_letter_failures_total 0\n") {
				t.Errorf("/metrics lacks the dead-letter counters %+v", want)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(h.cfg.Kafka.Brokers...), kgo.ConsumeTopics(n.DLQ()),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			fs := cl.PollFetches(ctx)
			recs := fs.Records()
			if len(recs) != 1 {
				t.Fatalf("dlq records %d (errors %v)", len(recs), fs.Errors())
			}
			hd := map[string]string{}
			for _, kv := range recs[0].Headers {
				hd[kv.Key] = string(kv.Value)
			}
			if hd[consumer.HeaderError] == "" || hd[consumer.HeaderTopic] != n.Results("ctl") {
				t.Fatalf("dead letter headers %v", hd)
			}
			if tc.ref {
				if hd[consumer.HeaderReference] == "" || len(recs[0].Value) != consumer.PrefixBytes {
					t.Fatalf("not a reference: headers %v, %d bytes", hd, len(recs[0].Value))
				}
				return
			}
			if string(recs[0].Value) != string(tc.value) || hd["trace"] != "t1" {
				t.Fatalf("copy lost its value or headers: %v %q", hd, recs[0].Value)
			}
		})
	}
}

func TestRunMaxWaiting(t *testing.T) {
	h := start(t, func(c *Config) { c.MaxWaiting = 1; c.RetryAfter = 2500 * time.Millisecond })
	release := make(chan struct{})
	startFake(t, h, func(ctx context.Context, a *topics.Arrival) []*topics.Result {
		select {
		case <-release:
		case <-ctx.Done():
			return nil
		}
		return []*topics.Result{ok(a, "w1", "", nil, "")}
	})
	first := postAsync(t, h.base+"/run/hold")
	eventually(t, "first request waiting", func() bool { return h.c.book.waiting() == 1 })
	resp, body := call(t, "POST", h.base+"/run/hold", "", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("second request: %d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if e := jsonError(t, resp, body); e.Reason != topics.ReasonOverloaded || e.ActivationID != "" {
		t.Errorf("error body %+v; want reason overloaded, no activation id", e)
	}
	if v, ok := resp.Header[HeaderActivationID]; ok {
		t.Errorf("%s %q on a request refused before it had an activation; want the header absent", HeaderActivationID, v)
	}
	// A non-blocking request does not wait, so it is still accepted.
	if resp, body := call(t, "POST", h.base+"/run/hold?blocking=false", "", ""); resp.StatusCode != 202 {
		t.Errorf("non-blocking while full: %d %s", resp.StatusCode, body)
	}
	close(release)
	if s := (<-first).StatusCode; s != 200 {
		t.Errorf("first request: %d", s)
	}
}

func TestGracefulShutdownAnswersWaiting(t *testing.T) {
	h := start(t, func(c *Config) { c.DrainTimeout = 200 * time.Millisecond })
	startFake(t, h, func(ctx context.Context, a *topics.Arrival) []*topics.Result {
		<-ctx.Done() // never answers
		return nil
	})
	got := postAsync(t, h.base+"/run/stuck")
	eventually(t, "request waiting", func() bool { return h.c.book.waiting() == 1 })
	h.shutdown()
	resp := <-got
	if resp.StatusCode != 503 {
		t.Fatalf("waiting request got %d on shutdown, want 503", resp.StatusCode)
	}
	if resp.Header.Get(HeaderActivationID) == "" {
		t.Error("503 without the activation id")
	}
}

func TestGracefulShutdownLetsResultsArrive(t *testing.T) {
	h := start(t, func(c *Config) { c.DrainTimeout = 10 * time.Second })
	release := make(chan struct{})
	startFake(t, h, func(ctx context.Context, a *topics.Arrival) []*topics.Result {
		select {
		case <-release:
		case <-ctx.Done():
			return nil
		}
		return []*topics.Result{ok(a, "w1", topics.StartWarm, []byte(`{"ok":true}`), "")}
	})
	got := postAsync(t, h.base+"/run/inflight")
	eventually(t, "request waiting", func() bool { return h.c.book.waiting() == 1 })
	h.stop()
	eventually(t, "draining", func() bool { return h.c.draining.Load() })
	close(release)
	if s := (<-got).StatusCode; s != 200 {
		t.Errorf("in-flight request got %d during the drain, want 200", s)
	}
	h.shutdown()
}

func TestPublishFailureAnswers503(t *testing.T) {
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const (
		pass = iota
		refuse
		drop
	)
	var mode atomic.Int32
	b.Cluster().ControlKey(kmsg.Produce.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		switch mode.Load() {
		case refuse: // a definitive, non-retriable refusal of every partition
			return broker.RefuseProduce(kr.(*kmsg.ProduceRequest), kerr.PolicyViolation), nil, true
		case drop: // the connection breaks: the outcome is unknown
			return nil, errors.New("injected produce failure"), true
		}
		return nil, nil, false
	})
	h := start(t, func(c *Config) { c.Kafka.Brokers = b.Addrs(); c.PublishTimeout = 300 * time.Millisecond })

	mode.Store(refuse)
	resp, body := call(t, "POST", h.base+"/run/f", "", "")
	if resp.StatusCode != 503 {
		t.Fatalf("refused: status %d: %s", resp.StatusCode, body)
	}
	if e := jsonError(t, resp, body); !strings.Contains(e.Error, "could not publish") || e.ActivationID == "" {
		t.Errorf("refused: error %+v", e)
	}
	if st := h.c.book.stats(); st.Waiting != 0 || st.Activations != 0 {
		t.Errorf("a refused publish left %+v behind", st)
	}
	resp, body = call(t, "GET", h.base+"/admin/workers/add?workers=http://127.0.0.1:8081", bearer, "")
	if resp.StatusCode != 503 {
		t.Errorf("admin add while the broker refuses: %d %s", resp.StatusCode, body)
	}

	mode.Store(drop)
	resp, body = call(t, "POST", h.base+"/run/f", "", "")
	if resp.StatusCode != 503 {
		t.Fatalf("dropped: status %d: %s", resp.StatusCode, body)
	}
	e := jsonError(t, resp, body)
	if !strings.Contains(e.Error, "did not acknowledge") || resp.Header.Get(HeaderOutcome) != "unknown" {
		t.Errorf("dropped: error %+v, %s %q", e, HeaderOutcome, resp.Header.Get(HeaderOutcome))
	}
	if n := h.c.book.waiting(); n != 0 {
		t.Errorf("an unacknowledged publish left %d waiters", n)
	}
	// The record may still reach the broker, so the activation stays known.
	if resp, body := call(t, "GET", h.base+"/activations/"+e.ActivationID, "", ""); resp.StatusCode != 202 {
		t.Errorf("unacknowledged activation: %d %s", resp.StatusCode, body)
	}
	// With an Idempotency-Key, a retry after an unknown outcome is answered
	// for the same activation and publishes nothing.
	published := value(t, h.c.m.published)
	resp, body = keyed(t, h.base+"/run/f", "once")
	if resp.StatusCode != 503 || resp.Header.Get(HeaderOutcome) != "unknown" {
		t.Fatalf("keyed, dropped: %d %s %q", resp.StatusCode, body, resp.Header.Get(HeaderOutcome))
	}
	id := resp.Header.Get(HeaderActivationID)
	mode.Store(pass)
	resp, body = keyed(t, h.base+"/run/f?blocking=false", "once")
	if resp.StatusCode != 202 || resp.Header.Get(HeaderActivationID) != id {
		t.Errorf("keyed retry: %d %s, id %q want %q", resp.StatusCode, body, resp.Header.Get(HeaderActivationID), id)
	}
	if got := value(t, h.c.m.published); got != published {
		t.Errorf("the keyed retry published again (%v arrivals, was %v)", got, published)
	}
	h.shutdown()
}
