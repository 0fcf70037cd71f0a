package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeController mimics the controller's answers: a worker chosen round
// robin, cold on the first call of a function on that worker, 503 for
// functions in fail, and an optional delay.
type fakeController struct {
	delay time.Duration
	fail  map[string]bool

	n    atomic.Int64
	mu   sync.Mutex
	seen map[string]bool
	got  []string
	body map[string]string
}

func (f *fakeController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn, ok := strings.CutPrefix(r.URL.Path, "/run/")
	if !ok || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(r.Body)
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	worker := fmt.Sprintf("127.0.0.1-%d", 8081+f.n.Add(1)%3)
	f.mu.Lock()
	if f.seen == nil {
		f.seen, f.body = map[string]bool{}, map[string]string{}
	}
	cold := !f.seen[worker+fn]
	f.seen[worker+fn] = true
	f.got = append(f.got, fn)
	f.body[fn] = string(b)
	f.mu.Unlock()
	if f.fail[fn] {
		http.Error(w, "no workers", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("X-Worker", worker)
	if cold {
		w.Header().Set("X-Cold-Start", "1")
	} else {
		w.Header().Set("X-Cold-Start", "0")
	}
	w.Write([]byte(`{"ok":true}`))
}

func quickCfg(target string) Config {
	return Config{
		Target:   target,
		Stages:   []Stage{{VUs: 2, Duration: 150 * time.Millisecond}, {VUs: 4, Duration: 150 * time.Millisecond}},
		ThinkMin: time.Millisecond, ThinkMax: 3 * time.Millisecond,
		Seed: 9,
	}
}

func TestRunAgainstFakeController(t *testing.T) {
	fc := &fakeController{fail: map[string]bool{}}
	mix, _ := NewMix(9, 5)
	failing := mix.Functions()[0].Name
	fc.fail[failing] = true
	srv := httptest.NewServer(fc)
	defer srv.Close()
	var prog bytes.Buffer
	cfg := quickCfg(srv.URL)
	cfg.Progress = &prog
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := rep.Overall
	if o.Requests == 0 || o.Requests != len(fc.got) || len(rep.Records) != o.Requests {
		t.Fatalf("requests %d, server saw %d, records %d", o.Requests, len(fc.got), len(rep.Records))
	}
	fails := 0
	for _, fn := range fc.got {
		if fn == failing {
			fails++
		}
	}
	if o.Errors != fails || o.ErrorKinds["status 503"] != fails {
		t.Errorf("errors %d (%v), want %d", o.Errors, o.ErrorKinds, fails)
	}
	if o.Cold+o.Warm != o.Requests-o.Errors || o.Cold == 0 {
		t.Errorf("cold %d warm %d of %d", o.Cold, o.Warm, o.Requests-o.Errors)
	}
	if len(o.Workers) != 3 || len(rep.PerStage) != 2 || rep.PerStage[0].VUs != 2 || rep.PerStage[1].VUs != 4 || o.VUs != 4 {
		t.Errorf("workers %v, stages %+v", o.Workers, rep.PerStage)
	}
	if rep.PerStage[0].Requests+rep.PerStage[1].Requests != o.Requests || o.RPS <= 0 || len(rep.CDF) == 0 {
		t.Errorf("stage sums / rps / cdf: %+v", o)
	}
	for fn, b := range fc.body {
		var f *Function
		for _, g := range mix.Functions() {
			if g.Name == fn {
				f = &g
			}
		}
		if f == nil || b != string(f.Payload) {
			t.Errorf("%s got body %q", fn, b)
		}
	}
	out := prog.String()
	if !strings.Contains(out, "stage 1/2: 2 VUs") || !strings.Contains(out, "stage 2/2: 4 VUs") {
		t.Errorf("progress %q", out)
	}
	// The summary is valid JSON with the documented keys.
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"overall", "per_stage", "latency_cdf", "mix", "mix_mode"} {
		if back[k] == nil {
			t.Errorf("json lacks %s", k)
		}
	}
	if _, ok := back["records"]; ok {
		t.Error("records in summary json")
	}
}

// sequences returns the functions each (stage, VU) sent, in order.
func sequences(recs []Record) map[[2]int][]string {
	out := map[[2]int][]string{}
	for _, r := range recs {
		k := [2]int{r.Stage, r.VU}
		out[k] = append(out[k], r.Function)
	}
	return out
}

// TestSameSeedSameSequencePerVU runs the same seed against a fast and a
// slow controller. In shared mode each (stage, VU) sends the same sequence
// of functions; in per-VU mode each VU id sends, over the run, what the
// reference script's VU would, whatever the latencies.
func TestSameSeedSameSequencePerVU(t *testing.T) {
	fast := httptest.NewServer(&fakeController{})
	defer fast.Close()
	slow := httptest.NewServer(&fakeController{delay: 2 * time.Millisecond})
	defer slow.Close()
	for _, mode := range []string{MixShared, MixPerVU} {
		cfg := quickCfg(fast.URL)
		cfg.MixMode = mode
		a, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Target = slow.URL
		b, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if a.MixMode != mode || b.MixMode != mode {
			t.Errorf("reports say mix mode %q and %q, want %q", a.MixMode, b.MixMode, mode)
		}
		sa, sb := sequences(a.Records), sequences(b.Records)
		if len(sa) != 6 || len(sb) != 6 {
			t.Fatalf("%s: VUs %d and %d, want 6", mode, len(sa), len(sb))
		}
		if mode == MixPerVU {
			for _, s := range []map[[2]int][]string{sa, sb} {
				checkScriptSequences(t, cfg, s)
			}
			continue
		}
		for k, xa := range sa {
			xb := sb[k]
			n := min(len(xa), len(xb))
			if n == 0 {
				t.Fatalf("VU %v sent nothing", k)
			}
			for i := range n {
				if xa[i] != xb[i] {
					t.Fatalf("VU %v request %d: %s vs %s", k, i, xa[i], xb[i])
				}
			}
		}
		// A different seed changes the sequences.
		cfg.Target, cfg.Seed = fast.URL, 10
		c, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		same := true
		for k, xc := range sequences(c.Records) {
			xa := sa[k]
			for i := range min(len(xa), len(xc), 5) {
				same = same && xa[i] == xc[i]
			}
		}
		if same {
			t.Error("seed 10 drew the same functions as seed 9")
		}
	}
}

// checkScriptSequences checks that each VU id of a per-VU run sent what
// the transliterated script sends given as many requests per stage. A VU
// whose stage ended during its last request draws no think time after it;
// the records do not say which, so every combination is tried.
func checkScriptSequences(t *testing.T, cfg Config, seqs map[[2]int][]string) {
	t.Helper()
	type part struct {
		stage int
		fns   []string
	}
	byID := map[int][]part{}
	for s, ids := range vuIDs(cfg.Stages) {
		for v, id := range ids {
			byID[id] = append(byID[id], part{s, seqs[[2]int{s, v}]})
		}
	}
	for id, parts := range byID {
		ok := false
		for mask := 0; mask < 1<<len(parts) && !ok; mask++ {
			ref := refInit(cfg.Seed, id, 5)
			ok = true
			for i, p := range parts {
				for j, fn := range p.fns {
					ok = ok && ref.request() == fn
					if j < len(p.fns)-1 || mask&(1<<i) != 0 {
						ref.sleep()
					}
				}
			}
		}
		if !ok {
			t.Errorf("VU id %d sent %v, not what the script's VU %d sends", id, parts, id)
		}
	}
}

func TestLatencyInModelTime(t *testing.T) {
	srv := httptest.NewServer(&fakeController{delay: 5 * time.Millisecond})
	defer srv.Close()
	cfg := quickCfg(srv.URL)
	cfg.Stages = []Stage{{VUs: 1, Duration: 100 * time.Millisecond}}
	cfg.TimeScale = 0.5 // 5 ms of wall time is 10 ms of model time
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Records {
		if r.Latency < 10*time.Millisecond {
			t.Fatalf("latency %v under the 10 ms model time of a 5 ms wall delay", r.Latency)
		}
	}
	if rep.Overall.MeanMS < 10 {
		t.Errorf("mean %v ms", rep.Overall.MeanMS)
	}
}

// hangingServer answers nothing until the client gives up or release is
// closed; it signals each arrival on arrived when there is room.
func hangingServer(arrived chan struct{}) (*httptest.Server, chan struct{}) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a closed connection only once the body is read
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	return srv, release
}

func TestRunStopsWithContext(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv, release := hangingServer(arrived)
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	cfg := quickCfg(srv.URL)
	cfg.Stages = []Stage{{VUs: 3, Duration: time.Hour}, {VUs: 3, Duration: time.Hour}}
	rep, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	// Each VU sends at most one request (none if it starts after the cancel),
	// and every one is cut off; the second stage never starts.
	if rep == nil || rep.Overall.Requests < 1 || rep.Overall.Requests > 3 ||
		rep.Overall.ErrorKinds["transport"] != rep.Overall.Requests || len(rep.PerStage) != 1 {
		t.Errorf("report %+v", rep)
	}
}

func TestTransportErrorsAndTimeout(t *testing.T) {
	srv, release := hangingServer(nil)
	defer srv.Close()
	defer close(release)
	cfg := quickCfg(srv.URL)
	cfg.Stages = []Stage{{VUs: 2, Duration: time.Millisecond}}
	cfg.RequestTimeout = 20 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Overall.Requests != 2 || rep.Overall.Errors != 2 || rep.Records[0].Err == "" {
		t.Errorf("report %+v", rep.Overall)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no target":    {},
		"bad scheme":   {Target: "ftp://x"},
		"bad stage":    {Target: "http://127.0.0.1:1", Stages: []Stage{{VUs: 0, Duration: time.Second}}},
		"think":        {Target: "http://127.0.0.1:1", ThinkMin: 2 * time.Second, ThinkMax: time.Second},
		"copies":       {Target: "http://127.0.0.1:1", Copies: 60},
		"mix":          {Target: "http://127.0.0.1:1", MixMode: "zipf"},
		"time scale":   {Target: "http://127.0.0.1:1", TimeScale: -1},
		"neg. timeout": {Target: "http://127.0.0.1:1", RequestTimeout: -1},
	} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	c := Config{Target: "http://127.0.0.1:1"}.WithDefaults()
	err := c.Validate()
	if err != nil || len(c.Stages) != 3 || c.Stages[2] != (Stage{100, 100 * time.Second}) || c.ThinkMin != 100*time.Millisecond ||
		c.ThinkMax != time.Second || c.Copies != 5 || c.TimeScale != 1 || c.RequestTimeout != 90*time.Second || c.MixMode != MixPerVU {
		t.Errorf("defaults %+v %v", c, err)
	}
	c = Config{Target: "http://127.0.0.1:1", ThinkMax: -1}.WithDefaults()
	if c.ThinkMin != 0 || c.ThinkMax != 0 {
		t.Errorf("no think: %v %v", c.ThinkMin, c.ThinkMax)
	}
}

func TestFlagsAndStages(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	if f := fs.Lookup("stages"); f == nil || f.DefValue != "20:1m40s,50:1m40s,100:1m40s" {
		t.Fatalf("stages flag %+v", f)
	}
	if f := fs.Lookup("mix"); f == nil || f.DefValue != MixPerVU {
		t.Fatalf("mix flag %+v", f)
	}
	err := fs.Parse([]string{"--target", "http://127.0.0.1:9020", "--stages", "5:10s, 7:1m", "--seed", "3", "--time-scale", "0.1", "--mix", "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Target != "http://127.0.0.1:9020" || len(cfg.Stages) != 2 || cfg.Stages[1] != (Stage{7, time.Minute}) ||
		cfg.Seed != 3 || cfg.TimeScale != 0.1 || cfg.Copies != 5 || cfg.MixMode != MixShared {
		t.Errorf("parsed %+v", cfg)
	}
	for _, bad := range []string{"", "5", "x:1s", "0:1s", "5:0s", "5:-1s", "5:1s,"} {
		if _, err := ParseStages(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseStages(%q) = %v", bad, err)
		}
	}
}
