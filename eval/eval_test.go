package eval

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pullsched/pullsched/loadgen"
)

// fakeCluster mimics a controller: workers w0..w4 round robin; under
// "pull" every function stays on one worker (cold only the first time),
// otherwise each request is cold with probability of its worker hop.
type fakeCluster struct {
	policy string
	n      atomic.Int64
	mu     sync.Mutex
	warm   map[string]bool
}

func (f *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	fn, _ := strings.CutPrefix(r.URL.Path, "/run/")
	k := f.n.Add(1)
	worker := fmt.Sprintf("w%d", k%5)
	if f.policy == "pull" {
		worker = fmt.Sprintf("w%d", len(fn)%5)
	}
	f.mu.Lock()
	cold := !f.warm[worker+fn]
	f.warm[worker+fn] = true
	f.mu.Unlock()
	w.Header().Set("X-Worker", worker)
	if cold {
		w.Header().Set("X-Cold-Start", "1")
	} else {
		w.Header().Set("X-Cold-Start", "0")
	}
	w.Write([]byte(`{}`))
}

type starts struct {
	mu      sync.Mutex
	specs   []RunSpec
	stopped []string
	failOn  string
}

func (s *starts) start(ctx context.Context, spec RunSpec) (string, func() error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec.Policy == s.failOn {
		return "", nil, errors.New("no broker")
	}
	s.specs = append(s.specs, spec)
	srv := httptest.NewServer(&fakeCluster{policy: spec.Policy, warm: map[string]bool{}})
	return srv.URL, func() error {
		srv.Close()
		s.mu.Lock()
		s.stopped = append(s.stopped, spec.Policy)
		s.mu.Unlock()
		return nil
	}, nil
}

func (s *starts) policies() []string {
	var out []string
	for _, sp := range s.specs {
		out = append(out, sp.Policy)
	}
	return out
}

func smallCfg(out string) Config {
	return Config{
		Stages:    []loadgen.Stage{{VUs: 3, Duration: 2 * time.Second}, {VUs: 6, Duration: 2 * time.Second}},
		TimeScale: 0.05, // 100 ms of wall time per stage
		ThinkMin:  10 * time.Millisecond, ThinkMax: 50 * time.Millisecond,
		Scenarios: []string{"16g"},
		Out:       out,
	}
}

func TestRunWritesReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eval-out")
	var table, prog bytes.Buffer
	cfg := smallCfg(dir)
	cfg.Scenarios = []string{"4g", "16g"}
	cfg.Output, cfg.Progress = &table, &prog
	var s starts
	rep, err := Run(context.Background(), cfg, s.start)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicies()
	both := append(slices.Clone(want), want...)
	if !slices.Equal(s.policies(), both) || !slices.Equal(s.stopped, both) || s.specs[0].TimeScale != 0.05 {
		t.Errorf("started %+v stopped %v", s.specs, s.stopped)
	}
	for _, f := range []string{"report.md", "report.json", "latency-cdf-4g.png", "worker-load-4g.png", "latency-cdf-16g.png",
		"worker-load-16g.png", "loadgen-4g-s0-pull.json", "loadgen-16g-s0-random.json"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"latency-cdf-4g.png", "worker-load-16g.png"} {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		fh.Close()
	}
	// report.json has exactly the documented shape.
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	rowKeys := []string{"scenario", "memory_mb", "seed", "policy", "capacity", "requests", "mean_latency_ms", "p50_latency_ms",
		"p99_latency_ms", "rps", "cold_start_rate", "load_cv", "errors", "ideal_mean_latency_ms", "ideal_p50_latency_ms", "ideal_p99_latency_ms"}
	if len(doc) != 2 || len(doc["rows"]) != 8 || len(doc["summary"]) != 8 {
		t.Fatalf("report.json %s", raw)
	}
	for i, p := range doc["rows"] {
		if len(p) != len(rowKeys) {
			t.Errorf("row %d has keys %v", i, p)
		}
		for _, k := range rowKeys {
			if _, ok := p[k]; !ok {
				t.Errorf("row %d lacks %s", i, k)
			}
		}
		sc, mb := "4g", 4096.0
		if i >= 4 {
			sc, mb = "16g", 16384
		}
		if p["policy"] != want[i%4] || p["scenario"] != sc || p["memory_mb"] != mb || p["requests"].(float64) == 0 ||
			p["ideal_mean_latency_ms"].(float64) < 58 || p["capacity"] != 0.0 || p["seed"] != 0.0 {
			t.Errorf("row %d: %v", i, p)
		}
		if c := p["cold_start_rate"].(float64); c < 0 || c > 1 {
			t.Errorf("cold start rate %v not a fraction", c)
		}
	}
	sumKeys := []string{"scenario", "memory_mb", "policy", "capacity", "baseline", "seeds", "requests", "mean_latency_ms",
		"p50_latency_ms", "p99_latency_ms", "rps", "cold_start_rate", "load_cv", "errors", "mean_latency_vs_baseline",
		"cold_start_rate_vs_baseline", "gap_closed", "ideal_mean_latency_ms", "ideal_p50_latency_ms", "ideal_p99_latency_ms"}
	for i, p := range doc["summary"] {
		if len(p) != len(sumKeys) {
			t.Errorf("summary %d has keys %v", i, p)
		}
		for _, k := range sumKeys {
			if _, ok := p[k]; !ok {
				t.Errorf("summary %d lacks %s", i, k)
			}
		}
		m, ok := p["mean_latency_ms"].(map[string]any)
		if !ok || len(m) != 5 || m["n"] != 1.0 || m["sd"] != 0.0 || p["baseline"] != "pull" || p["policy"] != want[i%4] {
			t.Errorf("summary %d: %v", i, p)
		}
	}
	// The fake pull keeps every function on one worker, so it has the fewest
	// cold starts; the figures in the report are the runs' own.
	if rep.Rows[0].ColdStartRate >= rep.Rows[3].ColdStartRate {
		t.Errorf("pull cold %v, random %v", rep.Rows[0].ColdStartRate, rep.Rows[3].ColdStartRate)
	}
	for i, r := range rep.Rows {
		if r.Requests != rep.Runs[i].Overall.Requests || r.LoadCV != rep.Runs[i].Overall.LoadCV {
			t.Errorf("%s: row %+v vs run %+v", r.Policy, r, rep.Runs[i].Overall)
		}
	}
	out := table.String()
	for _, w := range []string{"scenario 4g, 4096 MB per worker, seed 0;", "scenario 16g", "relative to pull;", "chbl", "leastconn",
		"random", "ideal", "gap closed", "load CV", "100%"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, w := range []string{"## Scenario 4g (4096 MB per worker)", "## Scenario 16g (16384 MB per worker)", "| random |",
		"| ideal |", "latency-cdf-4g.png", "worker-load-16g.png", "| 0 | leastconn | default |"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("report.md lacks %q:\n%s", w, md)
		}
	}
	if !strings.Contains(prog.String(), "[8/8] scenario=16g seed=0 random: ") || !strings.Contains(prog.String(), "[1/8] scenario=4g seed=0 pull: ") {
		t.Errorf("progress %q", prog.String())
	}
}

// TestRunEveryRunOnce: every (scenario, seed, contender) runs once, in that
// order, with its RunSpec; the contenders of a scenario and seed get the
// same workload.
func TestRunEveryRunOnce(t *testing.T) {
	cfg := smallCfg("-")
	cfg.Stages = []loadgen.Stage{{VUs: 2, Duration: time.Second}}
	cfg.Scenarios = []string{"4g", "custom-2048"}
	cfg.Seeds = []int64{7, 3}
	cfg.Policies = []string{"chbl@8", "pull@unlimited", "pull"}
	cfg.Capacity = 3
	var prog bytes.Buffer
	cfg.Progress = &prog
	var s starts
	rep, err := Run(context.Background(), cfg, s.start)
	if err != nil {
		t.Fatal(err)
	}
	var want []RunSpec
	for _, mb := range []int{4096, 2048} {
		for _, seed := range []int64{7, 3} {
			want = append(want,
				RunSpec{Policy: "chbl", Capacity: 8, TimeScale: 0.05, MemoryMB: mb, Seed: seed},
				RunSpec{Policy: "pull", Capacity: -1, TimeScale: 0.05, MemoryMB: mb, Seed: seed},
				RunSpec{Policy: "pull", Capacity: 3, TimeScale: 0.05, MemoryMB: mb, Seed: seed})
		}
	}
	if !slices.Equal(s.specs, want) {
		t.Errorf("specs\n%+v\nwant\n%+v", s.specs, want)
	}
	if len(rep.Rows) != 12 || len(rep.Runs) != 12 || rep.Baseline() != "pull@unlimited" {
		t.Fatalf("%d rows, %d runs, baseline %q", len(rep.Rows), len(rep.Runs), rep.Baseline())
	}
	for i, r := range rep.Rows {
		if r.Seed != rep.Runs[i].Seed || r.Seed != want[i].Seed || r.Capacity != want[i].Capacity || r.MemoryMB != want[i].MemoryMB {
			t.Errorf("row %d %+v, workload seed %d", i, r, rep.Runs[i].Seed)
		}
	}
	if rep.Rows[11].Scenario != "custom-2048" || rep.Rows[11].Policy != "pull" || rep.Rows[1].Policy != "pull@unlimited" {
		t.Errorf("rows %+v", rep.Rows)
	}
	// Same seed, same workload: the function mix and the first VU's
	// sequence of functions every contender of a scenario and seed saw.
	for i := 1; i < 3; i++ {
		a, b := firstVU(rep.Runs[0]), firstVU(rep.Runs[i])
		n := min(len(a), len(b))
		if !slices.Equal(mixNames(rep.Runs[0]), mixNames(rep.Runs[i])) || n < 3 || !slices.Equal(a[:n], b[:n]) {
			t.Errorf("run %d has another workload: %v against %v", i, b, a)
		}
	}
	for _, w := range []string{"[1/12] scenario=4g seed=7 chbl@8: starting", "[5/12] scenario=4g seed=3 pull@unlimited: ",
		"[12/12] scenario=custom-2048 seed=3 pull: "} {
		if !strings.Contains(prog.String(), w) {
			t.Errorf("progress lacks %q:\n%s", w, prog.String())
		}
	}
	if len(rep.Summary) != 6 || rep.Summary[0].Policy != "chbl@8" || !slices.Equal(rep.Summary[0].Seeds, []int64{7, 3}) ||
		rep.Summary[1].MeanLatencyVsBaseline.Mean != 0 || rep.Summary[1].GapClosed.Mean != 0 {
		t.Errorf("summary %+v", rep.Summary)
	}
}

// firstVU returns the functions VU 0 of stage 0 called, in order.
func firstVU(r *loadgen.Report) []string {
	recs := slices.Clone(r.Records)
	slices.SortStableFunc(recs, func(a, b loadgen.Record) int { return cmp.Compare(a.At, b.At) })
	var out []string
	for _, rec := range recs {
		if rec.Stage == 0 && rec.VU == 0 {
			out = append(out, rec.Function)
		}
	}
	return out
}

func mixNames(r *loadgen.Report) []string {
	var out []string
	for _, f := range r.Mix {
		out = append(out, fmt.Sprintf("%s:%d", f.Name, f.Count))
	}
	return out
}

func TestRunStopsClusterOnFailure(t *testing.T) {
	var s starts
	s.failOn = "leastconn"
	cfg := smallCfg("-")
	rep, err := Run(context.Background(), cfg, s.start)
	if err == nil || !strings.Contains(err.Error(), "start leastconn cluster: no broker") {
		t.Fatalf("err %v", err)
	}
	if !slices.Equal(s.stopped, []string{"pull", "chbl"}) || len(rep.Rows) != 2 || len(rep.Summary) != 2 {
		t.Errorf("stopped %v, rows %d, summary %d", s.stopped, len(rep.Rows), len(rep.Summary))
	}
	// A target that refuses connections is a run with errors, not a failure.
	refused := func(ctx context.Context, _ RunSpec) (string, func() error, error) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		return url, func() error { return errors.New("already gone") }, nil
	}
	cfg.Policies = []string{"pull@4"}
	rep, err = Run(context.Background(), cfg, refused)
	if err == nil || !strings.Contains(err.Error(), "stop pull@4 cluster: already gone") {
		t.Errorf("err %v", err)
	}
	if len(rep.Rows) != 0 {
		t.Errorf("rows %+v", rep.Rows)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, p, err := Config{Quick: true}.resolve()
	if err != nil || c.TimeScale != QuickTimeScale || !slices.Equal(c.Stages, QuickStages()) || c.Out != "eval-out" ||
		!slices.Equal(c.Policies, DefaultPolicies()) || !slices.Equal(p.seeds, []int64{0}) || !slices.Equal(p.scenarios, Scenarios()) ||
		len(p.contenders) != 4 || p.contenders[1] != (Contender{Label: "chbl", Policy: "chbl"}) {
		t.Errorf("quick %+v %+v %v", c, p, err)
	}
	c, _, _ = Config{Quick: true, TimeScale: 0.5}.resolve()
	if c.TimeScale != 0.5 {
		t.Errorf("explicit time scale lost: %v", c.TimeScale)
	}
	c, p, _ = Config{Seed: 9, MemoryMB: 3000}.resolve()
	if c.TimeScale != 1 || !slices.Equal(c.Stages, loadgen.DefaultStages()) || !slices.Equal(p.seeds, []int64{9}) ||
		!slices.Equal(p.scenarios, []Scenario{{"custom-3000", 3000}}) {
		t.Errorf("full %+v %+v", c, p)
	}
	_, p, _ = Config{Seed: 9, Seeds: []int64{1, 2}}.resolve()
	if !slices.Equal(p.seeds, []int64{1, 2}) {
		t.Errorf("seeds %v", p.seeds)
	}
	for _, bad := range []Config{{Policies: []string{"pull", "pull"}}, {Policies: []string{""}}, {Policies: []string{"nosuch"}},
		{Policies: []string{"pull@0"}}, {TimeScale: -1}, {Seeds: []int64{1, 1}}, {Scenarios: []string{"8g"}},
		{Scenarios: []string{"4g"}, MemoryMB: 1024}, {MemoryMB: -1}, {Capacity: -2}} {
		if _, err := Run(context.Background(), bad, (&starts{}).start); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := Run(context.Background(), Config{}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil starter: %v", err)
	}
}

func TestParseContender(t *testing.T) {
	for _, c := range []struct {
		in      string
		def     int
		want    Contender
		wantErr string
	}{
		{in: "pull", want: Contender{"pull", "pull", 0}},
		{in: " pull ", def: 16, want: Contender{"pull", "pull", 16}},
		{in: "pull", def: -1, want: Contender{"pull", "pull", -1}},
		{in: "pull@unlimited", def: 16, want: Contender{"pull@unlimited", "pull", -1}},
		{in: "chbl@default", def: 16, want: Contender{"chbl@default", "chbl", 0}},
		{in: "pull-chbl@32", want: Contender{"pull-chbl@32", "pull-chbl", 32}},
		{in: "pull-based@1", want: Contender{"pull-based@1", "pull-based", 1}},
		{in: "", wantErr: "no policy"},
		{in: "@4", wantErr: "no policy"},
		{in: "nosuch", wantErr: `unknown policy "nosuch"`},
		{in: "nosuch@4", wantErr: `unknown policy "nosuch"`},
		{in: "pull@", wantErr: "is not unlimited, default or a number"},
		{in: "pull@0", wantErr: "is not unlimited, default or a number"},
		{in: "pull@-1", wantErr: "is not unlimited, default or a number"},
		{in: "pull@lots", wantErr: "is not unlimited, default or a number"},
		{in: "pull@4@5", wantErr: "is not unlimited, default or a number"},
		{in: "pull@Unlimited", wantErr: "is not unlimited, default or a number"},
		{in: "pull", def: -2, wantErr: "default capacity -2"},
	} {
		got, err := ParseContender(c.in, c.def)
		if c.wantErr != "" {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q (default %d) = %+v, %v; want %+v", c.in, c.def, got, err, c.want)
		}
	}
	if _, err := ParseContenders([]string{"pull", "pull@default", "pull"}, 0); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "repeated") {
		t.Errorf("repeated: %v", err)
	}
	for _, c := range []struct {
		in   []string
		want int
	}{
		{[]string{"chbl", "pull", "pull@unlimited"}, 2},
		{[]string{"chbl", "pull@4", "pull"}, 1},
		{[]string{"chbl", "random"}, 0},
		{[]string{"chbl", "pull-based"}, 1},
		{[]string{"pull-chbl@unlimited", "pull@default"}, 1},
	} {
		cs, err := ParseContenders(c.in, 0)
		if err != nil || baseline(cs) != c.want {
			t.Errorf("baseline of %v = %d (%v), want %d", c.in, baseline(cs), err, c.want)
		}
	}
	if CapacityString(-1) != "unlimited" || CapacityString(0) != "default" || CapacityString(12) != "12" {
		t.Error("CapacityString")
	}
}

func TestSelectScenarios(t *testing.T) {
	for _, c := range []struct {
		names    []string
		memoryMB int
		want     []Scenario
		wantErr  string
	}{
		{want: []Scenario{{"16g", 16384}, {"paper", PaperMemoryMB}, {"4g", 4096}}},
		{names: []string{"4g", "16g"}, want: []Scenario{{"4g", 4096}, {"16g", 16384}}},
		{names: []string{"paper"}, want: []Scenario{{"paper", PaperMemoryMB}}},
		{names: []string{"custom-3072", "4g"}, want: []Scenario{{"custom-3072", 3072}, {"4g", 4096}}},
		{memoryMB: 2048, want: []Scenario{{"custom-2048", 2048}}},
		{names: []string{"4g", "4g"}, wantErr: "repeated"},
		{names: []string{"custom-4096", "custom-4096"}, wantErr: "repeated"},
		{names: []string{"4G"}, wantErr: "unknown scenario"},
		{names: []string{"custom-0"}, wantErr: "unknown scenario"},
		{names: []string{"custom-04"}, wantErr: "unknown scenario"},
		{names: []string{"custom-x"}, wantErr: "unknown scenario"},
		{names: []string{"4g"}, memoryMB: 2048, wantErr: "both given"},
		{memoryMB: -5, wantErr: "< 0"},
	} {
		got, err := selectScenarios(c.names, c.memoryMB)
		if c.wantErr != "" {
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v %d: err %v, want %q", c.names, c.memoryMB, err, c.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%v %d = %v, %v; want %v", c.names, c.memoryMB, got, err, c.want)
		}
	}
	if !slices.Equal(Scenarios(), []Scenario{{"16g", 16384}, {"paper", PaperMemoryMB}, {"4g", 4096}}) {
		t.Errorf("Scenarios() = %v", Scenarios())
	}
}

func recs(fns ...string) []loadgen.Record {
	out := make([]loadgen.Record, len(fns))
	for i, f := range fns {
		out[i] = loadgen.Record{Function: f, Status: 200}
	}
	return out
}

func TestIdeal(t *testing.T) {
	// linpack warm 58 ms, dd 549, pyaes 149; a failed request counts, a
	// function without a profile does not.
	run := &loadgen.Report{Records: recs("linpack-0", "dd-2", "linpack-4", "nosuch-1", "pyaes")}
	run.Records[2].Status = 0
	if got := IdealLatencies(run); !slices.Equal(got, []float64{58, 58, 149, 549}) {
		t.Errorf("ideal latencies %v", got)
	}
	if got := IdealOf(run); got != (Ideal{Requests: 4, MeanMS: (58 + 58 + 149 + 549) / 4.0, P50MS: 58, P99MS: 549}) {
		t.Errorf("ideal %+v", got)
	}
	if got := IdealOf(nil); got != (Ideal{}) {
		t.Errorf("ideal of nothing %+v", got)
	}
	for _, c := range []struct {
		x, base, ideal, want float64
		ok                   bool
	}{{300, 300, 100, 0, true}, {100, 300, 100, 1, true}, {200, 300, 100, 0.5, true}, {400, 300, 100, -0.5, true}, {200, 100, 100, 0, false}} {
		if got, ok := GapClosed(c.x, c.base, c.ideal); ok != c.ok || got != c.want {
			t.Errorf("GapClosed(%v, %v, %v) = %v %v", c.x, c.base, c.ideal, got, ok)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestAggregation: fixed fake runs of two contenders, two seeds, one
// scenario; the baseline (pull@unlimited, listed second) gives the ideal.
func TestAggregation(t *testing.T) {
	sc := Scenario{"4g", 4096}
	cs, _ := ParseContenders([]string{"chbl", "pull@unlimited"}, 0)
	r := &Report{Contenders: cs, Scenarios: []Scenario{sc}, Seeds: []int64{1, 2}}
	add := func(seed int64, c Contender, mean, cold float64, errs int, run *loadgen.Report) {
		r.Rows = append(r.Rows, Row{Scenario: sc.Name, MemoryMB: sc.MemoryMB, Seed: seed, Policy: c.Label, Capacity: c.Capacity,
			Requests: 100 + errs, MeanLatencyMS: mean, P50LatencyMS: mean / 2, P99LatencyMS: 4 * mean, RPS: 10, ColdStartRate: cold, LoadCV: 0.2, Errors: errs})
		r.Runs = append(r.Runs, run)
	}
	// Seed 1: ideal (58+58+549)/3 = 221.67; seed 2: ideal (149+149)/2 = 149.
	add(1, cs[0], 300, 0.3, 0, &loadgen.Report{})
	add(1, cs[1], 400, 0.2, 0, &loadgen.Report{Records: recs("linpack-0", "linpack-1", "dd-0")})
	add(2, cs[0], 200, 0.1, 2, &loadgen.Report{})
	add(2, cs[1], 249, 0.1, 0, &loadgen.Report{Records: recs("pyaes-0", "pyaes-0")})
	r.finish()
	ideal1 := (58 + 58 + 549) / 3.0
	for i, want := range []float64{ideal1, ideal1, 149, 149} {
		if !near(r.Rows[i].IdealMeanLatencyMS, want) {
			t.Errorf("row %d ideal %v, want %v", i, r.Rows[i].IdealMeanLatencyMS, want)
		}
	}
	if r.Rows[0].IdealP50LatencyMS != 58 || r.Rows[0].IdealP99LatencyMS != 549 || r.Rows[3].IdealP99LatencyMS != 149 {
		t.Errorf("ideal percentiles %+v", r.Rows)
	}
	if len(r.Summary) != 2 {
		t.Fatalf("summary %+v", r.Summary)
	}
	chbl, pull := r.Summary[0], r.Summary[1]
	if chbl.Policy != "chbl" || pull.Policy != "pull@unlimited" || chbl.Baseline != "pull@unlimited" || pull.Capacity != -1 ||
		!slices.Equal(chbl.Seeds, []int64{1, 2}) || chbl.MemoryMB != 4096 {
		t.Fatalf("summary %+v", r.Summary)
	}
	// Means over seeds and the sample standard deviation (n−1).
	if s := chbl.MeanLatencyMS; s.Mean != 250 || !near(s.SD, math.Sqrt(2*50*50)) || s.Min != 200 || s.Max != 300 || s.N != 2 {
		t.Errorf("chbl mean latency %+v", s)
	}
	if s := chbl.Errors; s.Mean != 1 || !near(s.SD, math.Sqrt2) || chbl.Requests.Mean != 101 || chbl.P99LatencyMS.Mean != 1000 {
		t.Errorf("chbl errors %+v requests %+v", s, chbl.Requests)
	}
	// Relative differences per seed, then averaged: mean −25% and −19.68%,
	// cold +50% and 0%.
	d1, d2 := (300-400)/400.0, (200-249)/249.0
	if s := chbl.MeanLatencyVsBaseline; !near(s.Mean, (d1+d2)/2) || !near(s.SD, math.Abs(d1-d2)/math.Sqrt2) || s.N != 2 {
		t.Errorf("chbl mean vs baseline %+v", s)
	}
	if s := chbl.ColdStartRateVsBaseline; !near(s.Mean, 0.25) || !near(s.Min, 0) || !near(s.Max, 0.5) {
		t.Errorf("chbl cold vs baseline %+v", s)
	}
	// Gap closed: seed 1 (400−300)/(400−221.67), seed 2 (249−200)/(249−149).
	g1, g2 := 100/(400-ideal1), 49/100.0
	if s := chbl.GapClosed; !near(s.Mean, (g1+g2)/2) || s.N != 2 {
		t.Errorf("chbl gap closed %+v, want mean %v", s, (g1+g2)/2)
	}
	if pull.GapClosed.Mean != 0 || pull.MeanLatencyVsBaseline.Mean != 0 || pull.GapClosed.N != 2 {
		t.Errorf("baseline against itself %+v", pull)
	}
	if s := pull.IdealMeanLatencyMS; !near(s.Mean, (ideal1+149)/2) || chbl.IdealMeanLatencyMS != s {
		t.Errorf("ideal over seeds %+v, %+v", s, chbl.IdealMeanLatencyMS)
	}

	// The table shows mean ± sd, the differences, the gap closed and the
	// ideal row.
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	gap := fmt.Sprintf("%.0f ± %.0f%%", 100*chbl.GapClosed.Mean, 100*chbl.GapClosed.SD)
	for _, w := range []string{"scenario 4g, 4096 MB per worker, seeds 1,2 (mean ± sample std dev)", "relative to pull@unlimited;",
		"250 ± 71", "-22.3 ± 3.8%", "+25.0 ± 35.4%", gap, "1 ± 1", "ideal", "185 ± 51", "100%"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
	md := r.Markdown()
	for _, w := range []string{"| 1 | chbl | default | 100 | 0 | 300 |", "| 2 | pull@unlimited | unlimited |", "| ideal | 185 ± 51 | 104 ± 64 |"} {
		if !strings.Contains(md, w) {
			t.Errorf("report.md lacks %q:\n%s", w, md)
		}
	}

	// A seed whose baseline did not run has no relative figures.
	r.Rows, r.Runs = r.Rows[:3], r.Runs[:3]
	r.finish()
	if s := r.Summary[0]; s.MeanLatencyVsBaseline.N != 1 || s.GapClosed.N != 1 || s.MeanLatencyMS.N != 2 || r.Rows[2].IdealMeanLatencyMS != 149 {
		t.Errorf("cut short: %+v, rows %+v", s, r.Rows)
	}
}

func TestStatOf(t *testing.T) {
	if s := StatOf(nil); s != (Stat{}) {
		t.Errorf("empty %+v", s)
	}
	if s := StatOf([]float64{3}); s != (Stat{Mean: 3, Min: 3, Max: 3, N: 1}) {
		t.Errorf("one %+v", s)
	}
	if s := StatOf([]float64{2, 4, 4, 4, 5, 5, 7, 9}); s.Mean != 5 || !near(s.SD, math.Sqrt(32/7.0)) || s.Min != 2 || s.Max != 9 || s.N != 8 {
		t.Errorf("eight %+v", s)
	}
	for _, c := range []struct {
		s    Stat
		want string
	}{
		{Stat{}, "n/a"}, {Stat{Mean: 0.123, N: 1}, "+12.3%"}, {Stat{Mean: 0.0001, N: 1}, "0.0%"}, {Stat{Mean: -0.1, SD: 0.02, N: 3}, "-10.0 ± 2.0%"},
	} {
		if got := pctString(c.s); got != c.want {
			t.Errorf("pctString(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
	if got := gapString(Stat{Mean: -0.001, SD: 0.001, N: 2}); got != "0 ± 0%" {
		t.Errorf("a gap that rounds to 0: %q", got)
	}
}

func TestRelative(t *testing.T) {
	for _, c := range []struct {
		x, base, want float64
		ok            bool
	}{{110, 100, 0.1, true}, {50, 100, -0.5, true}, {0, 0, 0, true}, {1, 0, 0, false}, {100, 100, 0, true}} {
		if got, ok := Relative(c.x, c.base); ok != c.ok || got != c.want {
			t.Errorf("Relative(%v, %v) = %v %v", c.x, c.base, got, ok)
		}
	}
}

func TestLogTicks(t *testing.T) {
	var labels []string
	for _, tk := range (logTicks{}).Ticks(40, 1100) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if !slices.Equal(labels, []string{"50", "100", "200", "500", "1000"}) {
		t.Errorf("labels %v", labels)
	}
	if len((logTicks{}).Ticks(0, 10)) != 0 {
		t.Error("ticks for a non-positive range")
	}
}

func TestAddFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	for name, def := range map[string]string{"policies": "pull,chbl,leastconn,random", "capacity": "0", "scenarios": "", "memory-mb": "0", "seeds": "", "seed": "0"} {
		if f := fs.Lookup(name); f == nil || f.DefValue != def {
			t.Fatalf("%s flag %+v", name, f)
		}
	}
	if err := fs.Parse([]string{"--quick", "--policies", "pull@unlimited, pull", "--out", "x", "--seed", "4", "--scenarios", "4g,16g", "--capacity", "-1"}); err != nil {
		t.Fatal(err)
	}
	c, p, err := cfg.resolve()
	if err != nil || !slices.Equal(c.Policies, []string{"pull@unlimited", "pull"}) || c.Out != "x" || !slices.Equal(p.seeds, []int64{4}) ||
		c.TimeScale != QuickTimeScale || !slices.Equal(c.Stages, QuickStages()) || !slices.Equal(p.scenarios, []Scenario{{"4g", 4096}, {"16g", 16384}}) ||
		!slices.Equal(p.contenders, []Contender{{"pull@unlimited", "pull", -1}, {"pull", "pull", -1}}) {
		t.Errorf("parsed %+v %+v %v", c, p, err)
	}
	cfg = Config{}
	fs = flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	if err := fs.Parse([]string{"--stages", "10:5s", "--time-scale", "0.5", "--seeds", "1, 2,3", "--memory-mb", "2048"}); err != nil {
		t.Fatal(err)
	}
	if c, p, _ := cfg.resolve(); len(c.Stages) != 1 || c.TimeScale != 0.5 || !slices.Equal(p.seeds, []int64{1, 2, 3}) ||
		!slices.Equal(p.scenarios, []Scenario{{"custom-2048", 2048}}) || fs.Lookup("seeds").Value.String() != "1,2,3" {
		t.Errorf("parsed %+v %+v", c, p)
	}
	if err := fs.Parse([]string{"--seeds", "1,x"}); err == nil {
		t.Error("bad seed accepted")
	}
}
