package invokerbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

func sidecar(t *testing.T, e *env, url string, mod func(*Config)) (*Bridge, func() error) {
	t.Helper()
	cfg := e.config()
	cfg.WorkerURL = url
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, e.start(b)
}

// Assignments become calls; completions and results carry the status, the
// body and cold/warm as the worker told it; heartbeats register the worker
// and the shutdown marks it draining with nothing in flight.
func TestSidecarCallsWorker(t *testing.T) {
	e := newEnv(t)
	s := newSim(t, workersim.Config{})
	b, stop := sidecar(t, e, s.srv.URL, nil)
	id := s.workerID(t)
	if b.cfg.WorkerID != id {
		t.Fatalf("worker id %q, want %q", b.cfg.WorkerID, id)
	}

	reg := e.rec.worker(id, "active and healthy", func(w *topics.Worker) bool { return w.State == topics.WorkerActive && w.Healthy })
	if reg.Source != topics.SourceSidecar || reg.Bridge != "bridge-test" || reg.Capacity != 0 || reg.URL != s.srv.URL {
		t.Errorf("registration %+v", reg)
	}
	// The first record registers the worker not yet healthy: the bridge
	// does not hold its partition (nor know what a predecessor finished).
	e.rec.mu.Lock()
	var firstRec *topics.Worker
	for _, w := range e.rec.workers {
		if w.ID == id {
			firstRec = w
			break
		}
	}
	e.rec.mu.Unlock()
	if firstRec == nil || firstRec.Healthy {
		t.Errorf("first worker record %+v: want it unhealthy until the partition is held", firstRec)
	}

	first := e.assign(id, "linpack", func(a *topics.Assignment) { a.Warm = true })
	r1 := e.rec.result(first.ID)
	c1 := e.rec.completion(first.ID)
	second := e.assign(id, "linpack", nil)
	r2 := e.rec.result(second.ID)
	c2 := e.rec.completion(second.ID)

	if r1.Status != 200 || r1.Start != topics.StartCold || r1.Worker != id || r1.Source != "worker" || r1.Function != "linpack" {
		t.Errorf("first result %+v", r1)
	}
	if r2.Status != 200 || r2.Start != topics.StartWarm {
		t.Errorf("second result %+v", r2)
	}
	if !c1.OK || c1.Status != 200 || c1.Start != topics.StartCold || !c1.WarmHint || c1.DurationMs <= 0 || c1.Worker != id {
		t.Errorf("first completion %+v", c1)
	}
	if !c2.OK || c2.Start != topics.StartWarm || c2.WarmHint {
		t.Errorf("second completion %+v", c2)
	}
	body, err := r1.BodyBytes()
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Function string          `json:"function"`
		Cold     bool            `json:"cold"`
		Echo     json.RawMessage `json:"echo"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Function != "linpack" || !ans.Cold || string(ans.Echo) != `{"n":1}` {
		t.Errorf("first body %s (%v): want the worker's answer echoing the raw payload", body, err)
	}
	if !strings.HasPrefix(r1.ContentType, "application/json") {
		t.Errorf("content type %q", r1.ContentType)
	}
	if st := s.s.Stats(); st.Invocations != 2 || st.Cold != 1 || st.Warm != 1 {
		t.Errorf("worker stats %+v: want 2 invocations, 1 cold, 1 warm", st)
	}

	// Fire-and-forget: a completion, no result.
	ff := e.assign(id, "linpack", func(a *topics.Assignment) { a.Reply = "" })
	e.rec.completion(ff.ID)

	m := b.met
	if got := value(t, m.calls.WithLabelValues(id, "200")); got != 3 {
		t.Errorf("calls{200} = %v, want 3", got)
	}
	if got := value(t, m.starts.WithLabelValues(id, "cold")); got != 1 {
		t.Errorf("starts{cold} = %v, want 1", got)
	}
	resp, err := http.Get("http://" + b.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(mb), "pullsched_invoker_calls_total") {
		t.Errorf("/metrics lacks the call counter")
	}
	resp, err = http.Get("http://" + b.Addr() + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	e.rec.worker(id, "draining", func(w *topics.Worker) bool { return w.State == topics.WorkerDraining })
	last := e.rec.lastWorker(id)
	if last.State != topics.WorkerDraining || last.InFlight != 0 {
		t.Errorf("last record %+v: want draining with nothing in flight", last)
	}
	if _, c := e.rec.count(ff.ID); c != 1 {
		t.Errorf("fire-and-forget: %d completions", c)
	}
	if r, _ := e.rec.count(ff.ID); r != 0 {
		t.Errorf("fire-and-forget: %d results, want none", r)
	}
}

// A killed worker yields 502 results, failed completions and unhealthy
// heartbeats.
func TestKilledWorker(t *testing.T) {
	e := newEnv(t)
	s := newSim(t, workersim.Config{})
	_, _ = sidecar(t, e, s.srv.URL, nil)
	id := s.workerID(t)
	e.rec.worker(id, "healthy", func(w *topics.Worker) bool { return w.Healthy })
	s.kill()
	killed := time.Now()
	a := e.assign(id, "gzip_compression-2", nil)
	r := e.rec.result(a.ID)
	c := e.rec.completion(a.ID)
	if r.Status != http.StatusBadGateway || r.Reason != topics.ReasonWorkerFailed || r.Error == "" || r.Source != "worker" {
		t.Errorf("result %+v: want 502 worker_failed", r)
	}
	if c.OK || c.Status != 0 || c.Error == "" {
		t.Errorf("completion %+v: want a failure without status", c)
	}
	e.rec.worker(id, "unhealthy after the kill", func(w *topics.Worker) bool {
		return w.State == topics.WorkerActive && !w.Healthy && w.At.After(killed)
	})
}

// A re-delivered assignment runs once: one call, one result, one
// completion, a counted duplicate.
func TestDuplicateRunsOnce(t *testing.T) {
	e := newEnv(t)
	s := newSim(t, workersim.Config{})
	b, _ := sidecar(t, e, s.srv.URL, nil)
	id := b.cfg.WorkerID
	a := e.assign(id, "float_operation", nil)
	e.publish(e.names.Invoker(id), a) // while running or after
	e.rec.result(a.ID)
	after := e.assign(id, "float_operation", nil) // a marker: the duplicate was read before it
	e.rec.result(after.ID)
	e.publish(e.names.Invoker(id), a) // long after the answer
	marker := e.assign(id, "float_operation", nil)
	e.rec.result(marker.ID)
	// Completions and results travel on different topics: wait for the
	// marker's completion too before counting a's.
	e.rec.completion(marker.ID)
	if r, c := e.rec.count(a.ID); r != 1 || c != 1 {
		t.Errorf("%d results and %d completions for the duplicated id, want 1 and 1", r, c)
	}
	if st := s.s.Stats(); st.Invocations != 3 {
		t.Errorf("worker ran %d invocations, want 3", st.Invocations)
	}
	if got := value(t, b.met.duplicates.WithLabelValues(id)); got != 2 {
		t.Errorf("duplicates = %v, want 2", got)
	}
}

// Eviction notices become eviction events; malformed ones get 400, unknown
// hosts 404.
func TestEvictionNotices(t *testing.T) {
	e := newEnv(t)
	s := newSim(t, workersim.Config{})
	b, _ := sidecar(t, e, s.srv.URL, nil)
	id := b.cfg.WorkerID
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+b.Addr()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	code, out := post("/destroySandbox/image_resize-4", `{"host": "`+s.hostport()+`"}`)
	if code != 200 {
		t.Fatalf("valid notice: %d %s", code, out)
	}
	e.rec.until("eviction", func() bool { return len(e.rec.evicts) == 1 })
	ev := e.rec.evicts[0]
	if ev.Function != "image_resize-4" || ev.Worker != id || ev.At.IsZero() {
		t.Errorf("eviction %+v", ev)
	}

	for _, tc := range []struct {
		path, body string
		code       int
		says       string
	}{
		{"/destroySandbox/f", ``, 400, "empty body"},
		{"/destroySandbox/f", `{"host":`, 400, "not a JSON object"},
		{"/destroySandbox/f", `["x"]`, 400, "not a JSON object"},
		{"/destroySandbox/f", `{}`, 400, `missing \"host\"`},
		{"/destroySandbox/f", `{"host": 5}`, 400, "not a JSON object"},
		{"/destroySandbox/f", `{"host": "nohost"}`, 400, "is not"},
		{"/destroySandbox/f", `{"host": "127.0.0.1:http"}`, 400, "no valid port"},
		{"/destroySandbox/f", `{"host": "127.0.0.1:1"} {}`, 400, "more than one"},
		{"/destroySandbox/bad%20name", `{"host": "` + s.hostport() + `"}`, 400, "bad function name"},
		{"/destroySandbox/a/b", `{"host": "` + s.hostport() + `"}`, 400, "bad function name"},
		{"/destroySandbox/f", `{"host": "10.1.2.3:5000"}`, 404, "no worker"},
		{"/destroySandbox/f", `{"host": "` + strings.Repeat("x", 5000) + `:1"}`, 413, "larger than"},
	} {
		code, out := post(tc.path, tc.body)
		if code != tc.code || !strings.Contains(out, tc.says) {
			t.Errorf("POST %s %q: %d %s, want %d saying %q", tc.path, tc.body, code, out, tc.code, tc.says)
		}
	}
	resp, err := http.Get("http://" + b.Addr() + "/destroySandbox/f")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
	if n := len(e.rec.evicts); n != 1 {
		t.Errorf("%d evictions, want only the valid one", n)
	}
}

// The workersim's own notices, sent on memory pressure, reach the bridge
// and become eviction events of its worker, least recently used first.
func TestSimNoticesBecomeEvictions(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.WorkerURL = "http://" + ln.Addr().String()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sm, err := workersim.New(workersim.Config{MemoryMB: 2048, SandboxMB: 512, FreeGoal: -1, TimeScale: 0.01,
		NotifyURL: "http://" + b.Addr(), Advertise: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sm.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer func() { srv.Close(); _ = sm.Close() }()
	e.start(b)
	id := b.cfg.WorkerID
	for _, fn := range []string{"a", "b", "c", "d", "e"} { // 4 slots: e evicts a
		if r := e.rec.result(e.assign(id, fn, nil).ID); r.Status != 200 || r.Start != topics.StartCold {
			t.Fatalf("%s: %+v", fn, r)
		}
	}
	e.rec.until("eviction of a", func() bool { return len(e.rec.evicts) >= 1 })
	if ev := e.rec.evicts[0]; ev.Function != "a" || ev.Worker != id {
		t.Errorf("eviction %+v, want a on %s", ev, id)
	}
	if st := sm.Stats(); st.NoticesSent != 1 || st.Evictions != 1 {
		t.Errorf("sim stats %+v: want one eviction, announced and accepted", st)
	}
}

// Never more than Capacity calls run at once, and the heartbeat reports
// them in flight.
func TestBoundedConcurrency(t *testing.T) {
	e := newEnv(t)
	var running, peak atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			io.WriteString(w, "ready\n")
			return
		}
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		running.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok": true}`)
	}))
	defer worker.Close()
	defer once.Do(func() { close(release) })
	b, _ := sidecar(t, e, worker.URL, func(c *Config) { c.Capacity = 3 })
	id := b.cfg.WorkerID
	var ids []string
	for range 10 {
		ids = append(ids, e.assign(id, "f", func(a *topics.Assignment) { a.Scheduler = "sched-a" }).ID)
	}
	e.rec.worker(id, "3 in flight, all placed by sched-a", func(w *topics.Worker) bool {
		return w.InFlight == 3 && w.Capacity == 3 && len(w.InFlightBy) == 1 && w.InFlightBy["sched-a"] == 3
	})
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d before release, want 3", p)
	}
	once.Do(func() { close(release) })
	for _, x := range ids {
		if r := e.rec.result(x); r.Status != 200 || r.Start != topics.StartUnknown {
			t.Errorf("result %+v: want 200 with unknown start (no X-Cold-Start)", r)
		}
	}
	if p := peak.Load(); p > 3 {
		t.Errorf("peak concurrency %d, want at most 3", p)
	}
}

// A call that outlives its deadline yields a 504; a deadline already
// passed yields one without calling; a worker's error answer passes through.
func TestDeadlinesAndErrorAnswers(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int64
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/status":
			io.WriteString(w, "ready\n")
		case "/run/slow":
			calls.Add(1)
			_, _ = io.Copy(io.Discard, r.Body) // the server sees a client leave only once the body is read
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
				t.Errorf("slow call not cancelled by its deadline")
			}
		case "/run/broken":
			calls.Add(1)
			body, _ := io.ReadAll(r.Body)
			if !bytes.Equal(body, []byte("{}")) || r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "unexpected request "+string(body), 400)
				return
			}
			w.Header().Set("X-Cold-Start", "1")
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer worker.Close()
	b, _ := sidecar(t, e, worker.URL, nil)
	id := b.cfg.WorkerID

	slow := e.assign(id, "slow", func(a *topics.Assignment) { a.Deadline = time.Now().Add(300 * time.Millisecond) })
	past := e.assign(id, "slow", func(a *topics.Assignment) { a.Deadline = time.Now().Add(-time.Second) })
	broken := e.assign(id, "broken", func(a *topics.Assignment) { a.Payload = nil })

	if r := e.rec.result(slow.ID); r.Status != 504 || r.Reason != topics.ReasonTimeout {
		t.Errorf("slow: %+v, want 504 timeout", r)
	}
	if c := e.rec.completion(slow.ID); c.OK || c.Error == "" {
		t.Errorf("slow completion %+v", c)
	}
	if r := e.rec.result(past.ID); r.Status != 504 || r.Reason != topics.ReasonTimeout {
		t.Errorf("past deadline: %+v, want 504 timeout", r)
	}
	r := e.rec.result(broken.ID)
	body, _ := r.BodyBytes()
	if r.Status != 500 || r.Reason != "" || strings.TrimSpace(string(body)) != "boom" || r.Start != topics.StartCold {
		t.Errorf("broken: %+v body %q, want the worker's 500 and body", r, body)
	}
	if c := e.rec.completion(broken.ID); c.OK || c.Status != 500 {
		t.Errorf("broken completion %+v", c)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2 (the past-deadline one is not called)", n)
	}
}

// Shutdown finishes the calls in flight and publishes their answers before
// Run returns.
func TestShutdownDrains(t *testing.T) {
	e := newEnv(t)
	started := make(chan struct{}, 1)
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			io.WriteString(w, "ready\n")
			return
		}
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, `{"done": true}`)
	}))
	defer worker.Close()
	b, stop := sidecar(t, e, worker.URL, nil)
	a := e.assign(b.cfg.WorkerID, "f", nil)
	select {
	case <-started:
	case <-time.After(waitFor):
		t.Fatal("call never started")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Run has returned: the answer must already be on the broker.
	if r := e.rec.result(a.ID); r.Status != 200 {
		t.Errorf("result %+v", r)
	}
	first := e.rec.worker(b.cfg.WorkerID, "draining record", func(w *topics.Worker) bool { return w.State == topics.WorkerDraining })
	// The record written as the drain began (a call still running) does
	// not say Stopped; the last one, once the group is left, does: the
	// schedulers then place again what is left in the topic.
	e.rec.worker(b.cfg.WorkerID, "stopped record", func(w *topics.Worker) bool { return w.Stopped })
	if first.Stopped {
		t.Errorf("first draining record %+v says stopped while a call ran", first)
	}
	if last := e.rec.lastWorker(b.cfg.WorkerID); !last.Stopped || last.State != topics.WorkerDraining || last.InFlight != 0 {
		t.Errorf("last record %+v: want stopped, draining, nothing in flight", last)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}, WorkerURL: "http://127.0.0.1:5000"}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no brokers", func(c *Config) { c.Kafka.Brokers = nil }},
		{"no worker", func(c *Config) { c.WorkerURL = "" }},
		{"bad url", func(c *Config) { c.WorkerURL = "ftp://x" }},
		{"pool with url", func(c *Config) { c.Pool = true }},
		{"bad worker id", func(c *Config) { c.WorkerID = "a/b" }},
		{"capacity below unlimited", func(c *Config) { c.Capacity = -2 }},
		{"bad advertise", func(c *Config) { c.Advertise = "nohost" }},
		{"tiny heartbeat", func(c *Config) { c.HeartbeatInterval = time.Millisecond }},
		{"bad prefix", func(c *Config) { c.Topics.Prefix = "a/b" }},
	} {
		c := ok
		tc.mod(&c)
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", tc.name, err)
		}
	}
	b, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if b.cfg.WorkerID != "127.0.0.1-5000" || b.cfg.Advertise != "127.0.0.1:5000" || b.cfg.Capacity != 0 ||
		b.cfg.DedupeSize != 100000 || b.Addr() != "" || !strings.HasPrefix(b.cfg.ID, "invoker-") {
		t.Errorf("defaults: %+v", b.cfg)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}
