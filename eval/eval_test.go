package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
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
	started []string
	stopped []string
	scales  []float64
	failOn  string
}

func (s *starts) start(ctx context.Context, policy string, timeScale float64) (string, func() error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if policy == s.failOn {
		return "", nil, errors.New("no broker")
	}
	s.started = append(s.started, policy)
	s.scales = append(s.scales, timeScale)
	srv := httptest.NewServer(&fakeCluster{policy: policy, warm: map[string]bool{}})
	return srv.URL, func() error {
		srv.Close()
		s.mu.Lock()
		s.stopped = append(s.stopped, policy)
		s.mu.Unlock()
		return nil
	}, nil
}

func smallCfg(out string) Config {
	return Config{
		Stages:    []loadgen.Stage{{VUs: 3, Duration: 2 * time.Second}, {VUs: 6, Duration: 2 * time.Second}},
		TimeScale: 0.05, // 100 ms of wall time per stage
		ThinkMin:  10 * time.Millisecond, ThinkMax: 50 * time.Millisecond,
		Out: out,
	}
}

func TestRunWritesReport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eval-out")
	var table, prog bytes.Buffer
	cfg := smallCfg(dir)
	cfg.Output, cfg.Progress = &table, &prog
	var s starts
	rep, err := Run(context.Background(), cfg, s.start)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicies()
	if !slices.Equal(s.started, want) || !slices.Equal(s.stopped, want) || s.scales[0] != 0.05 {
		t.Errorf("started %v stopped %v scales %v", s.started, s.stopped, s.scales)
	}
	for _, f := range []string{"report.md", "report.json", "latency-cdf.png", "worker-load.png", "loadgen-pull.json", "loadgen-random.json"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"latency-cdf.png", "worker-load.png"} {
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
	keys := []string{"policy", "requests", "mean_latency_ms", "p50_latency_ms", "p99_latency_ms", "rps", "cold_start_rate", "load_cv", "errors"}
	if len(doc) != 1 || len(doc["policies"]) != 4 {
		t.Fatalf("report.json %s", raw)
	}
	for i, p := range doc["policies"] {
		if len(p) != len(keys) {
			t.Errorf("policy %d has keys %v", i, p)
		}
		for _, k := range keys {
			if _, ok := p[k]; !ok {
				t.Errorf("policy %d lacks %s", i, k)
			}
		}
		if p["policy"] != want[i] || p["requests"].(float64) == 0 {
			t.Errorf("policy %d: %v", i, p)
		}
		if c := p["cold_start_rate"].(float64); c < 0 || c > 1 {
			t.Errorf("cold start rate %v not a fraction", c)
		}
	}
	// The fake pull keeps every function on one worker, so it has the fewest
	// cold starts; the figures in the report are the runs' own.
	if rep.Policies[0].ColdStartRate >= rep.Policies[3].ColdStartRate {
		t.Errorf("pull cold %v, random %v", rep.Policies[0].ColdStartRate, rep.Policies[3].ColdStartRate)
	}
	for i, r := range rep.Policies {
		if r.Requests != rep.Runs[i].Overall.Requests || r.LoadCV != rep.Runs[i].Overall.LoadCV {
			t.Errorf("%s: result %+v vs run %+v", r.Policy, r, rep.Runs[i].Overall)
		}
	}
	out := table.String()
	for _, w := range []string{"pull", "chbl", "leastconn", "random", "relative to pull:", "load CV"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "| random |") || !strings.Contains(string(md), "latency-cdf.png") {
		t.Errorf("report.md:\n%s", md)
	}
	if !strings.Contains(prog.String(), "[4/4] random") {
		t.Errorf("progress %q", prog.String())
	}
}

func TestRunStopsClusterOnFailure(t *testing.T) {
	var s starts
	s.failOn = "leastconn"
	cfg := smallCfg("-")
	rep, err := Run(context.Background(), cfg, s.start)
	if err == nil || !strings.Contains(err.Error(), "start leastconn cluster: no broker") {
		t.Fatalf("err %v", err)
	}
	if !slices.Equal(s.stopped, []string{"pull", "chbl"}) || len(rep.Policies) != 2 {
		t.Errorf("stopped %v, results %d", s.stopped, len(rep.Policies))
	}
	// A target that refuses connections is a run with errors, not a failure.
	refused := func(ctx context.Context, policy string, _ float64) (string, func() error, error) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		return url, func() error { return errors.New("already gone") }, nil
	}
	cfg.Policies = []string{"pull"}
	rep, err = Run(context.Background(), cfg, refused)
	if err == nil || !strings.Contains(err.Error(), "stop pull cluster: already gone") {
		t.Errorf("err %v", err)
	}
	if len(rep.Policies) != 0 {
		t.Errorf("results %+v", rep.Policies)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Quick: true}.withDefaults()
	if err != nil || c.TimeScale != QuickTimeScale || !slices.Equal(c.Stages, QuickStages()) || c.Out != "eval-out" ||
		!slices.Equal(c.Policies, DefaultPolicies()) {
		t.Errorf("quick %+v %v", c, err)
	}
	c, _ = Config{Quick: true, TimeScale: 0.5}.withDefaults()
	if c.TimeScale != 0.5 {
		t.Errorf("explicit time scale lost: %v", c.TimeScale)
	}
	c, _ = Config{}.withDefaults()
	if c.TimeScale != 1 || !slices.Equal(c.Stages, loadgen.DefaultStages()) {
		t.Errorf("full %+v", c)
	}
	for _, bad := range []Config{{Policies: []string{"pull", "pull"}}, {Policies: []string{""}}, {TimeScale: -1}} {
		if _, err := Run(context.Background(), bad, (&starts{}).start); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := Run(context.Background(), Config{}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil starter: %v", err)
	}
}

func TestRelativeAndTable(t *testing.T) {
	for _, c := range []struct {
		x, base, want float64
		ok            bool
	}{{110, 100, 0.1, true}, {50, 100, -0.5, true}, {0, 0, 0, true}, {1, 0, 0, false}, {100, 100, 0, true}} {
		if got, ok := Relative(c.x, c.base); ok != c.ok || got != c.want {
			t.Errorf("Relative(%v, %v) = %v %v", c.x, c.base, got, ok)
		}
	}
	r := &Report{Policies: []Result{
		{Policy: "chbl", Requests: 100, MeanLatencyMS: 300, ColdStartRate: 0.2, LoadCV: 0.5},
		{Policy: "pull", Requests: 100, MeanLatencyMS: 200, ColdStartRate: 0.1, LoadCV: 0.4},
	}}
	if r.Baseline() != 1 {
		t.Errorf("baseline %d", r.Baseline())
	}
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// chbl vs pull: mean +50%, cold +100%, CV +25%.
	for _, w := range []string{"relative to pull:", "+50.0%", "+100.0%", "+25.0%", "0.0%"} {
		if !strings.Contains(out, w) {
			t.Errorf("table lacks %q:\n%s", w, out)
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
	if f := fs.Lookup("policies"); f == nil || f.DefValue != "pull,chbl,leastconn,random" {
		t.Fatalf("policies flag %+v", f)
	}
	if err := fs.Parse([]string{"--quick", "--policies", "pull, random", "--out", "x", "--seed", "4"}); err != nil {
		t.Fatal(err)
	}
	c, err := cfg.withDefaults()
	if err != nil || !slices.Equal(c.Policies, []string{"pull", "random"}) || c.Out != "x" || c.Seed != 4 ||
		c.TimeScale != QuickTimeScale || !slices.Equal(c.Stages, QuickStages()) {
		t.Errorf("parsed %+v %v", c, err)
	}
	cfg = Config{}
	fs = flag.NewFlagSet("eval", flag.ContinueOnError)
	cfg.AddFlags(fs)
	if err := fs.Parse([]string{"--stages", "10:5s", "--time-scale", "0.5"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := cfg.withDefaults(); len(c.Stages) != 1 || c.TimeScale != 0.5 {
		t.Errorf("parsed %+v", c)
	}
}
