package benchchain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		d    time.Duration
		n    int
		i    int
		at   time.Duration
	}{
		{rate: 200, d: 15 * time.Second, n: 3000, i: 1, at: 5 * time.Millisecond},
		{rate: 1000, d: time.Second, n: 1000, i: 999, at: 999 * time.Millisecond},
		{rate: 3, d: 2 * time.Second, n: 6, i: 4, at: 1333333333},
		{rate: 0.5, d: 3 * time.Second, n: 1, i: 1, at: 2 * time.Second},
	} {
		if n := requestCount(tc.rate, tc.d); n != tc.n {
			t.Errorf("requestCount(%g, %s) = %d, want %d", tc.rate, tc.d, n, tc.n)
		}
		if at := sendOffset(tc.i, tc.rate); at != tc.at {
			t.Errorf("sendOffset(%d, %g) = %s, want %s", tc.i, tc.rate, at, tc.at)
		}
	}
	// The schedule does not drift: request i leaves at i/rate, not at the
	// sum of rounded intervals.
	if got := sendOffset(3_000_000, 3); got != 1_000_000*time.Second {
		t.Errorf("sendOffset(3e6, 3) = %s", got)
	}
}

func TestPercentiles(t *testing.T) {
	var l Latencies
	if l.Percentile(50) != 0 || l.Max() != 0 {
		t.Fatal("empty latencies have percentiles")
	}
	// 1..100 ms in reverse: nearest rank.
	for i := 100; i >= 1; i-- {
		l.Add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {99.9, 100 * time.Millisecond},
		{100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := l.Percentile(tc.p); got != tc.want {
			t.Errorf("p%g = %s, want %s", tc.p, got, tc.want)
		}
	}
	l.Add(time.Second) // unsorted again
	if l.Max() != time.Second || l.Len() != 101 {
		t.Errorf("max %s len %d after adding 1s", l.Max(), l.Len())
	}
	var one Latencies
	one.Add(3 * time.Millisecond)
	if one.Percentile(1) != 3*time.Millisecond || one.Percentile(99) != 3*time.Millisecond {
		t.Error("a single latency is every percentile")
	}
}

func TestHeld(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Result
		want bool
	}{
		{"all ok", Result{Rate: 100, Sent: 1000, OK: 1000, Achieved: 100, P99: 5}, true},
		{"1% failed", Result{Rate: 100, Sent: 1000, OK: 990, Achieved: 99, P99: 5}, true},
		{"2% failed", Result{Rate: 100, Sent: 1000, OK: 980, Achieved: 98, P99: 5}, false},
		{"slow tail", Result{Rate: 100, Sent: 1000, OK: 1000, Achieved: 100, P99: 1500}, false},
		{"behind", Result{Rate: 100, Sent: 900, OK: 900, Achieved: 90, P99: 5}, false},
		{"nothing sent", Result{Rate: 100}, false},
	} {
		if got := held(tc.r); got != tc.want {
			t.Errorf("%s: held = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// Field 2 holds a space and a parenthesis; utime 250 and stime 50 ticks.
	line := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 1000000 500"
	d, err := parseStatCPU(line)
	if err != nil || d != 3*time.Second {
		t.Fatalf("parseStatCPU = %s, %v; want 3s", d, err)
	}
	for _, bad := range []string{"", "4242 cmd S 1", "1 (x) S 1 2 3"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
	if d, err := procCPU(1 << 30); err == nil {
		t.Errorf("procCPU of no process = %s", d)
	}
}

func TestPerRequest(t *testing.T) {
	before := map[string]time.Duration{"bench": time.Second, "scheduler": 0}
	after := map[string]time.Duration{"bench": 3 * time.Second, "scheduler": 500 * time.Millisecond}
	got := perRequest(before, after, 1000)
	if got["bench"] != 2 || got["scheduler"] != 0.5 {
		t.Errorf("perRequest = %v, want bench 2 ms, scheduler 0.5 ms", got)
	}
	if len(perRequest(before, after, 0)) != 0 {
		t.Error("per request of no requests")
	}
}

func TestReport(t *testing.T) {
	mk := func(target string, rate, p50, p99 float64, ok int) Result {
		var l Latencies
		for i := range ok {
			if i%100 >= 98 {
				l.Add(time.Duration(p99 * 1e6))
			} else {
				l.Add(time.Duration(p50 * 1e6))
			}
		}
		r := Result{Target: target, Rate: rate, Duration: 1, Sent: int(rate), OK: ok, Statuses: map[string]int{"200": ok},
			CPU: map[string]float64{"bench": 0.1}}
		if ok < int(rate) {
			r.Statuses["429"] = int(rate) - ok
		}
		summarize(&r, &l)
		return r
	}
	rep := Report{Mode: "in-process", Broker: "embedded", Workers: 5, Results: []Result{
		mk("direct", 100, 0.2, 0.5, 100), mk("chain", 100, 1.2, 4.5, 100),
		mk("direct", 400, 0.2, 0.6, 400), mk("chain", 400, 2, 9, 200),
	}}
	if rep.HighestHeld("chain") != 100 || rep.HighestHeld("direct") != 400 {
		t.Errorf("highest held: chain %g direct %g", rep.HighestHeld("chain"), rep.HighestHeld("direct"))
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"chain at 100/s: p50 +1.00 ms (6.0×), p99 +4.00 ms (9.0×)", "200:200,429:200", "highest rate held, chain: 100/s",
		"bench=0.100"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 4 || back.Results[1].Latency.P99 != 4.5 || back.Results[3].Achieved != 200 || back.Results[3].Held {
		t.Errorf("JSON round trip: %+v", back.Results)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Rates: []float64{0}}, {Rates: []float64{-1}}, {Workers: -1}, {Duration: -time.Second},
		{Processes: true, CPUProfile: &bytes.Buffer{}}, {PartProcs: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults rejected: %v", err)
	}
}

// TestSmokeInProcess runs a few hundred requests at a low rate through the
// whole chain on an embedded broker: every one must be answered 200. No
// speed is asserted.
func TestSmokeInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and the chain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Rates: []float64{100}, Duration: 3 * time.Second, Warmup: -1, Workers: 2, Partitions: 2,
		Pause: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("want a direct and a chain result, got %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Sent != 300 || r.OK != r.Sent || r.Statuses["200"] != r.Sent || len(r.Statuses) != 1 {
			t.Errorf("%s: sent %d, ok %d, statuses %v: want every request answered 200", r.Target, r.Sent, r.OK, r.Statuses)
		}
		if r.P50 <= 0 || r.Max < r.P99 || r.P99 < r.P50 {
			t.Errorf("%s: percentiles out of order: %+v", r.Target, r.Latency)
		}
		if _, ok := r.CPU["bench"]; !ok {
			t.Errorf("%s: no CPU of this process: %v", r.Target, r.CPU)
		}
	}
}

func TestWindowMins(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := windowMins{start: t0}
	if w.max() != 0 {
		t.Fatal("max of nothing")
	}
	const ms = time.Millisecond
	// Window 0: 2 and 50 ms; window 1: none; window 2: 30 and 400 ms.
	w.add(t0.Add(10*ms), 50*ms)
	w.add(t0.Add(90*ms), 2*ms)
	w.add(t0.Add(250*ms), 400*ms)
	w.add(t0.Add(299*ms), 30*ms)
	w.add(t0.Add(-5*ms), 70*ms) // before start: window 0
	if got := w.max(); got != 30*ms {
		t.Errorf("max of window minima = %s, want 30ms (window 2)", got)
	}
}

func TestParseControllerMetrics(t *testing.T) {
	text := `# HELP pullsched_controller_request_seconds Time from a /run request to its answer.
pullsched_controller_request_seconds_bucket{code="200",le="0.001"} 3
pullsched_controller_request_seconds_sum{code="200"} 1.5
pullsched_controller_request_seconds_count{code="200"} 100
pullsched_controller_request_seconds_sum{code="429"} 0.5
pullsched_controller_request_seconds_count{code="429"} 100
pullsched_controller_admission_refused_total 100
garbage line
`
	after := parseControllerMetrics(bufio.NewScanner(strings.NewReader(text)))
	if after.handlerSum != 2 || after.handlerCount != 200 || after.refused != 100 {
		t.Fatalf("parsed %+v", after)
	}
	if got := handlerMeanMs(controllerMetrics{ok: true}, after); got != 10 {
		t.Errorf("mean handler time %g ms, want 10", got)
	}
	if got := handlerMeanMs(controllerMetrics{}, after); got != 0 {
		t.Errorf("mean without a first scrape %g, want 0", got)
	}
}
