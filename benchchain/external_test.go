package benchchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestExternalURLAndParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
		name    string
		url     string // of function f-7
	}{
		{in: "hiku=http://127.0.0.1:9020/run/", name: "hiku", url: "http://127.0.0.1:9020/run/f-7"},
		{in: " p = http://h:1/invoke/{fn}/now?x=1 ", name: "p", url: "http://h:1/invoke/f-7/now?x=1"},
		{in: "q=http://h:1/run/?timeout=10", name: "q", url: "http://h:1/run/f-7?timeout=10"},
		{in: "r=https://h:1/a/{fn}/{fn}", name: "r", url: "https://h:1/a/f-7/f-7"},
		{in: "no-equals", wantErr: true},
		{in: "=http://h:1/run/", wantErr: true},
		{in: "chain=http://h:1/run/", wantErr: true},
		{in: "direct=http://h:1/run/", wantErr: true},
		{in: "broker=http://h:1/run/", wantErr: true},
		{in: "a b=http://h:1/run/", wantErr: true},
		{in: "x=ftp://h:1/run/", wantErr: true},
		{in: "x=/run/", wantErr: true},
		{in: "x=http://h:1/%zz", wantErr: true},
	} {
		e, err := ParseExternal(tc.in)
		if tc.wantErr {
			if err == nil || !errors.Is(err, ErrConfig) {
				t.Errorf("ParseExternal(%q) = %+v, %v; want an ErrConfig", tc.in, e, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseExternal(%q): %v", tc.in, err)
			continue
		}
		if e.Name != tc.name || e.functionURL("f-7") != tc.url {
			t.Errorf("ParseExternal(%q): name %q, f-7 at %q; want %q, %q", tc.in, e.Name, e.functionURL("f-7"), tc.name, tc.url)
		}
	}
	for _, tc := range []struct {
		in   string
		name string
		pid  int
		ok   bool
	}{{"hiku=42", "hiku", 42, true}, {"hiku=0", "", 0, false}, {"hiku", "", 0, false}, {"hiku=x", "", 0, false}} {
		name, pid, err := ParseNamedPID(tc.in)
		if (err == nil) != tc.ok || name != tc.name || pid != tc.pid {
			t.Errorf("ParseNamedPID(%q) = %q, %d, %v", tc.in, name, pid, err)
		}
	}
}

func TestValidateExternalsAndWorkerAddrs(t *testing.T) {
	ext := External{Name: "p", URL: "http://127.0.0.1:1/run/"}
	for _, c := range []Config{
		{Externals: []External{ext, ext}},
		{Externals: []External{{Name: "p", URL: "nope"}}},
		{Externals: []External{{Name: "p", URL: "http://h:1/", PID: -1}}},
		{Workers: 2, WorkerAddrs: []string{"127.0.0.1:1"}},
		{WorkerAddrs: []string{"127.0.0.1:1", "127.0.0.1:1"}},
		{WorkerAddrs: []string{"no-port"}},
	} {
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: Validate = %v, want ErrConfig", c, err)
		}
	}
	c := Config{WorkerAddrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, Externals: []External{ext}}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
	d := c.WithDefaults()
	if d.Workers != 2 || d.Direct || d.Chain {
		t.Errorf("defaults with worker addresses and an external: workers %d, direct %v, chain %v; want 2 and neither built-in target",
			d.Workers, d.Direct, d.Chain)
	}
}

func TestTargetCPU(t *testing.T) {
	all := map[string]float64{"bench": 0.1, "scheduler": 0.2, "broker": 0.3, "invoker": 0.4, "hiku": 0.5, "other": 0.6}
	ext := map[string]bool{"hiku": true, "other": true}
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{"direct", []string{"bench"}},
		{"hiku", []string{"bench", "hiku"}},
		{"chain", []string{"bench", "broker", "invoker", "scheduler"}},
	} {
		got := targetCPU(tc.target, all, ext)
		var keys []string
		for k, v := range got {
			if v != all[k] {
				t.Errorf("%s: %s = %g, want %g", tc.target, k, v, all[k])
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, tc.want) {
			t.Errorf("%s: parts %v, want %v", tc.target, keys, tc.want)
		}
	}
}

// fakeProxy is an external target in front of given workers: it takes
// POST /invoke/<fn>/now, calls POST /run/<fn> on the workers in turn and
// passes the answer's status on.
type fakeProxy struct {
	workers []string // host:port
	client  *http.Client
	next    atomic.Uint64
	mu      sync.Mutex
	calls   map[string]int // by worker, answered 200
	fns     map[string]int // by function
}

func (p *fakeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn, ok := strings.CutPrefix(r.URL.Path, "/invoke/")
	fn, ok2 := strings.CutSuffix(fn, "/now")
	if !ok || !ok2 || fn == "" || r.Method != http.MethodPost {
		http.Error(w, "bad path", http.StatusNotFound)
		return
	}
	worker := p.workers[p.next.Add(1)%uint64(len(p.workers))]
	resp, err := p.client.Post("http://"+worker+"/run/"+fn, "application/json", r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		p.mu.Lock()
		p.calls[worker]++
		p.fns[fn]++
		p.mu.Unlock()
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// TestExternalTarget runs the direct target and a fake proxy fronting the
// bench's own workers on fixed addresses: every request sent to the proxy
// must reach those workers and come back 200, and the proxy's CPU (this
// process's pid here) must be reported under its name.
func TestExternalTarget(t *testing.T) {
	var addrs []string
	for range 3 {
		a, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	proxy := &fakeProxy{workers: addrs, client: newClient(5 * time.Second), calls: map[string]int{}, fns: map[string]int{}}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, Config{Rates: []float64{100, 200}, Duration: time.Second, Warmup: -1, Pause: 10 * time.Millisecond,
		WorkerAddrs: addrs, Functions: 4, Direct: true, Progress: &progress,
		Externals: []External{{Name: "fake", URL: srv.URL + "/invoke/{fn}/now", PID: os.Getpid()}}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Targets, []string{"direct", "fake"}) || !slices.Equal(rep.WorkerAddrs, addrs) {
		t.Fatalf("targets %v, workers %v; want direct, fake on %v", rep.Targets, rep.WorkerAddrs, addrs)
	}
	var order []string
	sentToFake := 0
	for _, r := range rep.Results {
		order = append(order, r.Target)
		if r.OK != r.Sent || r.Statuses["200"] != r.Sent || len(r.Statuses) != 1 {
			t.Errorf("%s at %g/s: sent %d, ok %d, statuses %v: want every request answered 200", r.Target, r.Rate, r.Sent, r.OK, r.Statuses)
		}
		_, hasOwn := r.CPU["fake"]
		if want := r.Target == "fake"; hasOwn != want {
			t.Errorf("%s: CPU %v: the external's part reported %v, want %v", r.Target, r.CPU, hasOwn, want)
		}
		if r.Target == "fake" {
			sentToFake += r.Sent
		}
	}
	if !slices.Equal(order, []string{"direct", "fake", "direct", "fake"}) {
		t.Errorf("runs in order %v, want each rate to direct, then fake", order)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	got := 0
	for _, a := range addrs {
		if proxy.calls[a] == 0 {
			t.Errorf("the proxy never reached worker %s: %v", a, proxy.calls)
		}
		got += proxy.calls[a]
	}
	// The readiness check sends ten requests to f-0 before the runs.
	if got != sentToFake+10 || len(proxy.fns) != 4 {
		t.Errorf("the workers answered the proxy %d times for functions %v; want %d (the runs' %d and 10 readiness checks) over f-0..f-3",
			got, proxy.fns, sentToFake+10, sentToFake)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	// Whether a rate held depends on the machine's load: not asserted.
	for _, want := range []string{"fake at 200/s: p50 ", "highest rate held, fake: ", "(of 100–200/s tried)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestWorkerAddrTaken: a fixed worker address already in use is a clear
// error, not a run against someone else's server.
func TestWorkerAddrTaken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, err := Run(context.Background(), Config{Rates: []float64{10}, Duration: 100 * time.Millisecond, Warmup: -1, Direct: true,
		WorkerAddrs: []string{addr}})
	if err == nil || !strings.Contains(err.Error(), "no-op worker") {
		t.Errorf("Run with a taken worker address: %v", err)
	}
}

func TestHeldRatioTable(t *testing.T) {
	mk := func(target string, rate float64, held bool) Result {
		return Result{Target: target, Rate: rate, Held: held}
	}
	rep := Report{Targets: []string{"direct", "hiku", "chain"}, Results: []Result{
		mk("direct", 1000, true), mk("hiku", 1000, true), mk("chain", 1000, true),
		mk("direct", 3000, true), mk("hiku", 3000, true), mk("chain", 3000, false),
		mk("direct", 4000, true), mk("hiku", 4000, false), mk("chain", 4000, false),
	}}
	if r := rep.HeldRatio("chain", "hiku"); r != 1.0/3 {
		t.Errorf("chain ÷ hiku = %g, want 1/3", r)
	}
	if r := rep.HeldRatio("chain", "nobody"); r != 0 {
		t.Errorf("ratio to a target that held nothing = %g, want 0", r)
	}
	// Held at 3000/s after failing at 2000/s: the highest held is 3000/s,
	// every rate held only up to 1000/s.
	rep.Results = append(rep.Results, mk("hiku", 2000, false))
	if rep.HighestHeld("hiku") != 3000 || rep.HeldThrough("hiku") != 1000 || rep.HeldThrough("direct") != 4000 || rep.HeldThrough("x") != 0 {
		t.Errorf("hiku: highest held %g, held through %g; direct held through %g", rep.HighestHeld("hiku"), rep.HeldThrough("hiku"),
			rep.HeldThrough("direct"))
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"highest rate held, chain ÷ hiku: 0.33× (every rate up to: 1.00×)", "highest rate held, hiku: 3000/s, every rate up to 1000/s",
		"highest rate held, chain: 1000/s"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"hiku": 3000`) || !strings.Contains(buf.String(), `"held_through"`) {
		t.Errorf("JSON lacks the highest rates held:\n%s", buf.String())
	}
}

// TestHelperProxy is not a test: run as a child process by
// TestExternalCommand (BENCHCHAIN_HELPER_PROXY=listen|worker,worker|pidfile),
// it is a fakeProxy that records its pid and serves until SIGTERM.
func TestHelperProxy(t *testing.T) {
	spec := os.Getenv("BENCHCHAIN_HELPER_PROXY")
	if spec == "" {
		t.Skip("BENCHCHAIN_HELPER_PROXY not set: this is the proxy process TestExternalCommand starts, run only as its child")
	}
	parts := strings.Split(spec, "|")
	f, err := os.OpenFile(parts[2], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
	proxy := &fakeProxy{workers: strings.Split(parts[1], ","), client: newClient(5 * time.Second), calls: map[string]int{}, fns: map[string]int{}}
	srv := &http.Server{Addr: parts[0], Handler: proxy}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; _ = srv.Close() }()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		t.Fatal(err)
	}
	os.Exit(0)
}

// TestExternalCommand: an external target with a command is started afresh
// for each run (a new pid per rate, none left running), measured, and its
// CPU reported.
func TestExternalCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: TestExternalCommand starts a proxy process per run (fork/exec and loopback ports); run without -short, as CI does")
	}
	worker, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	listen, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	t.Setenv("BENCHCHAIN_HELPER_PROXY", listen+"|"+worker+"|"+pidFile)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Rates: []float64{50, 100}, Duration: time.Second, Pause: 10 * time.Millisecond, WorkerAddrs: []string{worker},
		Externals: []External{{Name: "fresh", URL: "http://" + listen + "/invoke/{fn}/now", Command: []string{os.Args[0], "-test.run=^TestHelperProxy$"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("want two runs of the external only, got %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Target != "fresh" || r.OK != r.Sent || r.Statuses["200"] != r.Sent {
			t.Errorf("%s at %g/s: sent %d ok %d statuses %v", r.Target, r.Rate, r.Sent, r.OK, r.Statuses)
		}
		if _, ok := r.CPU["fresh"]; !ok {
			t.Errorf("no CPU of the started process: %v", r.CPU)
		}
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(b))
	if len(pids) != 2 || pids[0] == pids[1] {
		t.Fatalf("started pids %v: want a fresh process for each of the two runs", pids)
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there after the run (kill 0: %v)", pid, err)
		}
	}
	// A command whose address someone else already serves is refused, not
	// measured in its place.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err = Run(ctx, Config{Rates: []float64{10}, Duration: 100 * time.Millisecond, Warmup: -1, WorkerAddrs: []string{worker},
		Externals: []External{{Name: "x", URL: srv.URL + "/run/", Command: []string{"true"}}}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "another process listens there") {
		t.Errorf("an external command whose URL another process answers: %v", err)
	}
}
