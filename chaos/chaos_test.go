package chaos

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullsched/pullsched/topics"
)

func TestScenariosTable(t *testing.T) {
	for _, f := range []Form{{Short: true}, {Short: false}, {Short: true, BrokerRestart: true}, {BrokerRestart: true}} {
		scs := Scenarios(f)
		seen := map[string]bool{}
		faults := map[Fault]bool{}
		var total time.Duration
		for _, s := range scs {
			if seen[s.Name] {
				t.Errorf("%+v: scenario %s twice", f, s.Name)
			}
			seen[s.Name], faults[s.Fault] = true, true
			if s.Before <= 0 || s.Window <= 0 || s.Doc == "" {
				t.Errorf("%+v: %s has no load before or after its fault, or no doc", f, s.Name)
			}
			if s.Down >= s.Window {
				t.Errorf("%+v: %s restarts after its window (%v >= %v)", f, s.Name, s.Down, s.Window)
			}
			if s.Down > 0 && s.Fault != FaultSkewAhead && s.RestartBound <= 0 {
				t.Errorf("%+v: %s restarts within the window but bounds no recovery after it", f, s.Name)
			}
			if s.Down > 0 && s.Window-s.Down < s.RestartBound+time.Second {
				t.Errorf("%+v: %s leaves %v after its restart, less than its bound %v and a second", f, s.Name, s.Window-s.Down, s.RestartBound)
			}
			if s.Fault == FaultBrokerRestart {
				// Its window ends early, after the broker's return.
				if s.Window < s.Down+2*time.Minute || s.Name != scs[len(scs)-1].Name {
					t.Errorf("%+v: broker-restart must run last with room for slow stop and start commands", f)
				}
				continue
			}
			total += s.Before + s.Window
		}
		want := []Fault{FaultNone, FaultKillScheduler, FaultKillController, FaultKillSidecar, FaultKillWorker,
			FaultOversized, FaultMalformed, FaultSkewAhead, FaultSkewBehind, FaultForgedWorker}
		if f.BrokerRestart {
			want = append(want, FaultBrokerRestart)
		}
		if !f.Short {
			want = append(want, FaultForgedBridge)
		}
		for _, w := range want {
			if !faults[w] {
				t.Errorf("%+v: no scenario injects %s", f, w)
			}
		}
		if len(faults) != len(want) {
			t.Errorf("%+v: %d faults, want %d", f, len(faults), len(want))
		}
		if f.Short && total > 3*time.Minute {
			t.Errorf("short form loads for %v; CI wants a few minutes", total)
		}
		if sc := find(scs, FaultKillScheduler); sc.Bound != TakeoverBound {
			t.Errorf("%+v: kill-scheduler bound %v, want the takeover bound %v", f, sc.Bound, TakeoverBound)
		}
	}
}

func find(scs []Scenario, f Fault) Scenario {
	for _, s := range scs {
		if s.Fault == f {
			return s
		}
	}
	return Scenario{}
}

func TestSelect(t *testing.T) {
	all := Scenarios(Form{Short: true})
	got, err := Select(all, " forged-worker , baseline")
	if err != nil || len(got) != 2 || got[0].Name != "baseline" || got[1].Name != "forged-worker" {
		t.Fatalf("Select = %v, %v; want baseline, forged-worker in table order", got, err)
	}
	if got, err := Select(all, ""); err != nil || len(got) != len(all) {
		t.Fatalf("Select(\"\") = %d scenarios, %v; want all %d", len(got), err, len(all))
	}
	if _, err := Select(all, "baseline,broker-restart"); err == nil || !strings.Contains(err.Error(), "broker-restart") {
		t.Fatalf("Select of a scenario the form lacks: err %v, want one naming it", err)
	}
}

var th = Thresholds{Timeout: 5 * time.Second, Slack: 2 * time.Second, Late: time.Second, Slow: time.Second,
	DupBudget: 0.001, Interval: 10 * time.Millisecond, Stable: 2 * time.Second, RelapseBudget: 0.01}

// load makes n samples 10 ms apart, each answered 200 after 20 ms and
// executed once, with its nonce in execs.
func load(n int, execs map[string]Execs) []Sample {
	out := make([]Sample, n)
	for i := range out {
		at := time.Duration(i) * 10 * time.Millisecond
		out[i] = Sample{Fn: "f", Nonce: "n" + string(rune('A'+i%26)) + time.Duration(i).String(),
			Intended: at, Sent: at, Done: at + 20*time.Millisecond, Status: 200, Worker: "w1"}
		execs[out[i].Nonce] = Execs{Attempts: 1, Completed: 1}
	}
	return out
}

func TestTally(t *testing.T) {
	sc := Scenario{Name: "x", Fault: FaultKillSidecar}
	base := func() ([]Sample, Observed) {
		execs := map[string]Execs{}
		s := load(1000, execs) // 10 s of load
		return s, Observed{FaultAt: 2 * time.Second, Bound: 5 * time.Second, Execs: execs}
	}
	tests := []struct {
		name     string
		mutate   func(s []Sample, o *Observed)
		pass     bool
		failWith string
		check    func(t *testing.T, r Result)
	}{
		{name: "clean", pass: true, check: func(t *testing.T, r Result) {
			if r.Sent != 1000 || r.Accepted != 1000 || r.ByStatus["200"] != 1000 || r.RecoverySec != 0 || !r.Recovered {
				t.Errorf("clean run: %+v", r)
			}
			if r.P50Ms != 20 || r.P99Ms != 20 || r.Executions != 1000 {
				t.Errorf("p50 %v p99 %v executions %d, want 20 ms, 20 ms, 1000", r.P50Ms, r.P99Ms, r.Executions)
			}
		}},
		{name: "504s for 2s after the fault recover in time", pass: true, mutate: func(s []Sample, o *Observed) {
			for i := 200; i < 400; i++ {
				s[i].Status, s[i].Done = 504, s[i].Sent+5*time.Second
				o.Execs[s[i].Nonce] = Execs{}
			}
		}, check: func(t *testing.T, r Result) {
			if r.ByStatus["504"] != 200 || r.BadAfter != 200 || r.RecoverySec != 2.0 {
				t.Errorf("by status %v, bad after %d, recovery %v; want 200 504s, recovery 2.0s", r.ByStatus, r.BadAfter, r.RecoverySec)
			}
		}},
		{name: "slow 200s count as not recovered", failWith: "recovery took 6.0s", mutate: func(s []Sample, o *Observed) {
			for i := 200; i < 800; i++ {
				s[i].Done = s[i].Intended + 1500*time.Millisecond
			}
		}},
		{name: "bad from the fault to the end is not recovered", failWith: "not recovered", mutate: func(s []Sample, o *Observed) {
			o.Bound = time.Hour
			for i := 200; i < 1000; i++ {
				s[i].Status = 503
			}
		}},
		{name: "good for less than the stable stretch does not count", failWith: "50 request(s) after the recovery were not answered 200 within 1s, more than 1.0% of the 900", mutate: func(s []Sample, o *Observed) {
			for i := 200; i < 300; i++ { // 1 s bad, 1.5 s good, 1 s bad, then good
				s[i].Status = 503
			}
			for i := 450; i < 550; i++ {
				s[i].Status = 503
			}
			for i := 850; i < 900; i++ { // 3 s later: a relapse beyond the budget
				s[i].Status = 429
			}
		}, check: func(t *testing.T, r Result) {
			if r.RecoverySec != 3.5 || r.Relapses != 50 {
				t.Errorf("recovery %v relapses %d, want 3.5 s and 50", r.RecoverySec, r.Relapses)
			}
		}},
		{name: "a burst long after the recovery is a relapse within budget", pass: true, mutate: func(s []Sample, o *Observed) {
			for i := 200; i < 250; i++ {
				s[i].Status = 504
			}
			for i := 800; i < 805; i++ {
				s[i].Status, s[i].Reason = 429, "overloaded"
			}
		}, check: func(t *testing.T, r Result) {
			if r.RecoverySec != 0.5 || r.Relapses != 5 || !r.Recovered {
				t.Errorf("recovery %v relapses %d recovered %v, want 0.5 s, 5, true", r.RecoverySec, r.Relapses, r.Recovered)
			}
		}},
		{name: "with a zero bound every bad request is a relapse", failWith: "20 request(s) after the recovery", mutate: func(s []Sample, o *Observed) {
			o.Bound = 0
			for i := 600; i < 620; i++ {
				s[i].Status = 429
			}
		}, check: func(t *testing.T, r Result) {
			if r.RecoverySec != 0 || r.Relapses != 20 {
				t.Errorf("recovery %v relapses %d, want 0 and 20", r.RecoverySec, r.Relapses)
			}
		}},
		{name: "a negative bound is not judged", pass: true, mutate: func(s []Sample, o *Observed) {
			o.Bound = -1
			for i := 200; i < 800; i++ {
				s[i].Err, s[i].Status = ErrRefused, 0
			}
		}, check: func(t *testing.T, r Result) {
			if r.Refused != 600 || r.Accepted != 400 {
				t.Errorf("refused %d accepted %d, want 600 and 400", r.Refused, r.Accepted)
			}
		}},
		{name: "phases split at the restart", failWith: "after the restart took 2.0s, bound 1.0s", mutate: func(s []Sample, o *Observed) {
			o.RestartAt, o.RestartBound = 5*time.Second, time.Second
			for i := 200; i < 250; i++ { // 0.5 s after the fault
				s[i].Status = 504
			}
			for i := 500; i < 700; i++ { // 2 s after the restart
				s[i].Status = 503
			}
		}, check: func(t *testing.T, r Result) {
			if r.RecoverySec != 0.5 || r.RestartRecoverySec != 2.0 || !r.Restarted {
				t.Errorf("recovery %v, after restart %v; want 0.5 and 2.0", r.RecoverySec, r.RestartRecoverySec)
			}
		}},
		{name: "hangs", failWith: "1 request(s) unanswered", mutate: func(s []Sample, o *Observed) {
			s[10].Err, s[10].Status, s[10].Done = ErrHang, 0, s[10].Sent+7*time.Second
			o.Bound = time.Hour
		}},
		{name: "late answers", failWith: "1 answer(s) came more than 1s after their deadline", mutate: func(s []Sample, o *Observed) {
			s[500].Status, s[500].Done = 504, s[500].Sent+6500*time.Millisecond
			o.Bound = time.Hour
		}},
		{name: "one duplicate in 1000 is within budget", pass: true, mutate: func(s []Sample, o *Observed) {
			o.Execs[s[7].Nonce] = Execs{Attempts: 2, Completed: 2}
		}, check: func(t *testing.T, r Result) {
			if r.Duplicates != 1 || r.DuplicateRate != 0.001 || r.Executions != 1001 {
				t.Errorf("duplicates %d rate %v executions %d", r.Duplicates, r.DuplicateRate, r.Executions)
			}
		}},
		{name: "two duplicates in 1000 are not", failWith: "2 duplicate execution(s)", mutate: func(s []Sample, o *Observed) {
			o.Execs[s[7].Nonce] = Execs{Attempts: 2, Completed: 2}
			o.Execs[s[8].Nonce] = Execs{Attempts: 3, Completed: 2}
		}, check: func(t *testing.T, r Result) {
			if r.AttemptDuplicates != 3 {
				t.Errorf("attempt duplicates %d, want 3", r.AttemptDuplicates)
			}
		}},
		{name: "a 200 nobody executed", failWith: "no worker executed", mutate: func(s []Sample, o *Observed) {
			delete(o.Execs, s[3].Nonce)
		}},
		{name: "bad before the fault", failWith: "3 of 100 request(s) before the fault", mutate: func(s []Sample, o *Observed) {
			s[5].Status, s[6].Status, s[7].Status = 502, 502, 502
		}},
		{name: "one bad before the fault is within the budget", pass: true, mutate: func(s []Sample, o *Observed) {
			s[5].Status = 429
		}},
		{name: "in flight at the fault counts from the fault", pass: true, mutate: func(s []Sample, o *Observed) {
			s[150].Err, s[150].Status = ErrRefused, 0 // due 0.5 s before the fault
		}, check: func(t *testing.T, r Result) {
			if r.BadBefore != 0 || r.BadAfter != 1 || r.RecoverySec != 0 {
				t.Errorf("bad before %d, after %d, recovery %v; want 0, 1, 0", r.BadBefore, r.BadAfter, r.RecoverySec)
			}
		}},
		{name: "no_workers with workers up", failWith: "1 request(s) answered 503 no_workers", mutate: func(s []Sample, o *Observed) {
			s[600].Status, s[600].Reason = 503, ReasonNoWorkers
			o.Bound = time.Hour
		}},
		{name: "a stuck part", failWith: "not ready or stuck", mutate: func(s []Sample, o *Observed) {
			o.NotReady = []string{"scheduler-1: 1 stuck partition(s)"}
		}},
		{name: "injected records must reach the dlq", failWith: "2 of 22 injected record(s) not dead-lettered", mutate: func(s []Sample, o *Observed) {
			o.Injected, o.DeadLettered = 22, 20
		}},
		{name: "all injected records dead-lettered", pass: true, mutate: func(s []Sample, o *Observed) {
			o.Injected, o.DeadLettered = 22, 22
		}},
		{name: "required target served", pass: true, mutate: func(s []Sample, o *Observed) {
			o.Target, o.RequireTarget = "w1", true
		}},
		{name: "required target idle", failWith: "served no request", mutate: func(s []Sample, o *Observed) {
			o.Target, o.RequireTarget = "w2", true
		}},
		{name: "forbidden target used", failWith: "placed on forged", mutate: func(s []Sample, o *Observed) {
			o.Target, o.ForbidTarget = "forged", true
			s[300].Worker, s[300].Status = "forged", 502
			o.Bound = time.Hour
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, o := base()
			if tt.mutate != nil {
				tt.mutate(s, &o)
			}
			r := Tally(sc, s, o, th)
			if r.Pass != tt.pass {
				t.Fatalf("pass = %v, want %v; failures %q", r.Pass, tt.pass, r.Failures)
			}
			if tt.failWith != "" && !strings.Contains(strings.Join(r.Failures, "\n"), tt.failWith) {
				t.Errorf("failures %q, want one containing %q", r.Failures, tt.failWith)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestSampleStatusKey(t *testing.T) {
	for _, tt := range []struct {
		s    Sample
		want string
	}{
		{Sample{Status: 200}, "200"},
		{Sample{Status: 503, Outcome: "unknown"}, "503/unknown"},
		{Sample{Status: 503, Reason: "unavailable", Outcome: "unknown"}, "503 unavailable/unknown"},
		{Sample{Status: 504, Reason: "timeout"}, "504 timeout"},
		{Sample{Err: ErrHang}, "hang"},
		{Sample{Err: ErrRefused}, "refused"},
	} {
		if got := tt.s.StatusKey(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestReport(t *testing.T) {
	execs := map[string]Execs{}
	s := load(300, execs)
	ok := Tally(Scenario{Name: "baseline", Fault: FaultNone}, s, Observed{FaultAt: time.Second, Execs: execs}, th)
	s[200].Status = 504
	bad := Tally(Scenario{Name: "kill-scheduler", Fault: FaultKillScheduler}, s,
		Observed{FaultAt: time.Second, Bound: 500 * time.Millisecond, Execs: execs,
			Counted: map[string]float64{"duplicates_total": 3}}, th)
	rep := &Report{Form: "short", Brokers: []string{"127.0.0.1:9092"}, Rate: 100, Functions: 16, TimeScale: 0.1, Timeout: "5s",
		Results: []Result{ok, bad}}
	rep.Finish()
	if rep.Pass {
		t.Fatal("a report with a failed scenario passes")
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"| scenario | sent |",
		"| baseline | 300 | 200: 300 | 0 | 0 | 0 (0.00%) | – | 0.0 s (≤ 0.0) |",
		"| kill-scheduler | 300 | 200: 299, 504: 1 |",
		"dup 3",
		"1.0 s (≤ 0.5)",
		"**FAIL**",
		"- kill-scheduler: recovery took 1.0s, bound 0.5s",
		"FAILED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	var js bytes.Buffer
	if err := rep.JSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not read back: %v", err)
	}
	if back.Pass || len(back.Results) != 2 || back.Results[1].ByStatus["504"] != 1 || back.Results[1].Failures[0] == "" {
		t.Errorf("JSON round trip: %+v", back)
	}

	rep.Results = rep.Results[:1]
	rep.Finish()
	md.Reset()
	_ = rep.Markdown(&md)
	if !rep.Pass || !strings.Contains(md.String(), "all assertions hold") {
		t.Errorf("a passing report: pass %v\n%s", rep.Pass, md.String())
	}
	rep.Results = nil
	rep.Finish()
	if rep.Pass {
		t.Error("a report without results passes")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP pullsched_scheduler_duplicates_total x
# TYPE pullsched_scheduler_duplicates_total counter
pullsched_scheduler_duplicates_total{reason="redelivered"} 3
pullsched_scheduler_duplicates_total{reason="revoked_unacked"} 2
pullsched_invoker_duplicates_total{worker="w1"} 4
pullsched_invoker_predecessor_duplicates_total{worker="w1"} 1
pullsched_controller_results_total{outcome="delivered"} 100
pullsched_controller_results_total{outcome="duplicate"} 6
pullsched_scheduler_dead_letters_total 7
pullsched_scheduler_dead_letter_failures_total 0
pullsched_invoker_stuck_partitions 1
go_goroutines 42
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"duplicates_total": 9, "predecessor_duplicates_total": 1, "results_duplicate": 6,
		"dead_letters_total": 7, "dead_letter_failures_total": 0, "stuck_partitions": 1}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, m[k], v, m)
		}
	}
	if _, ok := m["go_goroutines"]; ok {
		t.Error("an unfollowed metric was kept")
	}
	before := map[string]float64{"duplicates_total": 5, "dead_letters_total": 1}
	mid := map[string]float64{"duplicates_total": 8, "dead_letters_total": 1}
	after := map[string]float64{"duplicates_total": 2, "stuck_partitions": 3}
	if d := counterDelta(before, mid, after, true); d["duplicates_total"] != 5 || d["dead_letters_total"] != 0 || d["stuck_partitions"] != 0 {
		t.Errorf("delta over a restart: %v, want duplicates 3+2", d)
	}
	after = map[string]float64{"duplicates_total": 9, "dead_letters_total": 4}
	if d := counterDelta(before, nil, after, false); d["duplicates_total"] != 4 || d["dead_letters_total"] != 3 {
		t.Errorf("delta: %v", d)
	}
}

func TestNonceAndRecords(t *testing.T) {
	if got := nonceOf([]byte(`{"chaos":"abc-baseline-7"}`)); got != "abc-baseline-7" {
		t.Errorf("nonce %q", got)
	}
	for _, b := range []string{`{}`, `{"chaos":"unterminated`, ``} {
		if got := nonceOf([]byte(b)); got != "" {
			t.Errorf("nonceOf(%q) = %q, want none", b, got)
		}
	}
	for _, kind := range []topics.Kind{topics.KindArrival, topics.KindCompletion, topics.KindWorker, topics.KindAssignment, topics.KindResult} {
		v := oversized(kind, []byte("chaos-oversized-0-0"))
		if len(v) < 1_000_000 || len(v) > topics.MaxMessageBytes {
			t.Errorf("%s: oversized value of %d bytes, want about 1 MB within %d", kind, len(v), topics.MaxMessageBytes)
		}
		if !json.Valid(v) {
			t.Errorf("%s: oversized value is not JSON", kind)
		}
		if _, err := topics.Decode(v); err == nil {
			t.Errorf("%s: oversized value decodes as an event", kind)
		}
		for _, j := range malformed(kind) {
			if _, err := topics.Decode(j.value); err == nil {
				t.Errorf("%s: malformed %s decodes as an event", kind, j.name)
			}
		}
	}
	fns := functions(16)
	if len(fns) != 16 || fns[0] != "linpack-1" || fns[8] != "linpack-2" || fns[15] != "dd-2" {
		t.Errorf("functions(16) = %v", fns)
	}
}

func TestProxyCounts(t *testing.T) {
	var calls atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if strings.HasSuffix(r.URL.Path, "/busy") {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", "1")
		_, _ = w.Write(b)
	}))
	count := newCounter()
	px, err := newProxy(up.URL, count)
	if err != nil {
		t.Fatal(err)
	}
	defer px.close()
	post := func(path, body string) (*http.Response, error) {
		return http.Post("http://"+px.addr()+path, "application/json", strings.NewReader(body))
	}
	for i := 0; i < 2; i++ {
		resp, err := post("/run/f", `{"chaos":"a"}`)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != `{"chaos":"a"}` || resp.Header.Get("X-Echo") != "1" {
			t.Fatalf("forwarded answer: %d %q %v", resp.StatusCode, b, resp.Header)
		}
	}
	if resp, err := post("/run/busy", `{"chaos":"b"}`); err != nil || resp.StatusCode != 429 {
		t.Fatalf("a 429 is passed on: %v %v", resp, err)
	}
	if resp, err := http.Get("http://" + px.addr() + "/status"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /status through the proxy: %v %v", resp, err)
	}
	got := count.snapshot()
	if got["a"] != (Execs{Attempts: 2, Completed: 2}) || got["b"] != (Execs{Attempts: 1, Completed: 0}) || len(got) != 2 {
		t.Errorf("counts %v; want a: 2 attempts, 2 completed; b: 1 attempt, none completed", got)
	}
	up.Close() // the worker dies: the proxy drops the connection, as the worker would
	if resp, err := post("/run/f", `{"chaos":"c"}`); err == nil {
		t.Errorf("a dead worker answered through the proxy: %d", resp.StatusCode)
	}
	if got := count.snapshot()["c"]; got.Completed != 0 {
		t.Errorf("a call to a dead worker counted as executed: %v", got)
	}
	if calls.Load() != 4 {
		t.Errorf("the worker got %d calls, want 4", calls.Load())
	}
}
