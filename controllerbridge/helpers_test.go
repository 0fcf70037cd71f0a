package controllerbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

var (
	testBroker *broker.Broker
	prefixes   atomic.Int64
)

func TestMain(m *testing.M) {
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedded broker:", err)
		os.Exit(1)
	}
	testBroker = b
	code := m.Run()
	b.Close()
	os.Exit(code)
}

// testConfig is a controller config on the shared broker under a fresh
// topic prefix.
func testConfig(brokers []string) Config {
	return Config{
		Kafka:        kafkaconn.Config{Brokers: brokers},
		Topics:       topics.Config{Prefix: fmt.Sprintf("cb%d.", prefixes.Add(1)), Partitions: 2},
		Listen:       "127.0.0.1:0",
		ID:           "ctl",
		AdminToken:   "s3cret",
		ResultMargin: 100 * time.Millisecond,
		Logger:       zerolog.Nop(),
	}
}

// harness is a running controller with a fake scheduler+bridge behind it.
type harness struct {
	t    testing.TB
	c    *Controller
	base string
	cfg  Config
	prod *producer.Producer
	stop context.CancelFunc
	done chan error
}

// start runs a controller with cfg (after mod) and waits until it is ready.
func start(t testing.TB, mod func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(testBroker.Addrs())
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, c: c, base: "http://" + c.Addr(), cfg: cfg, stop: cancel, done: make(chan error, 1)}
	go func() { h.done <- c.Run(ctx) }()
	select {
	case <-c.Ready():
	case err := <-h.done:
		t.Fatalf("controller stopped before ready: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("controller not ready after 15s")
	}
	p, err := producer.New(producer.Config{Kafka: cfg.Kafka})
	if err != nil {
		t.Fatal(err)
	}
	h.prod = p
	t.Cleanup(func() {
		h.shutdown()
		p.Close(time.Second)
	})
	return h
}

// shutdown stops the controller and checks that Run returned nil.
func (h *harness) shutdown() {
	h.t.Helper()
	h.stop()
	select {
	case err, ok := <-h.done:
		if ok && err != nil {
			h.t.Errorf("Run: %v", err)
		}
		if ok {
			close(h.done)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("Run did not return after 20s")
	}
}

// fake is a stand-in for the scheduler and the invokerbridges: it reads the
// arrivals topic and, for each arrival, publishes the results respond
// returns to results.<reply>. respond runs in its own goroutine per
// arrival, so it may block (until ctx ends).
type fake struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func startFake(t testing.TB, h *harness, respond func(ctx context.Context, a *topics.Arrival) []*topics.Result) *fake {
	t.Helper()
	n := h.cfg.Topics.Names()
	conn, err := h.cfg.Kafka.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(conn, kgo.ConsumeTopics(n.Arrivals()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fake{cancel: cancel}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				a, err := topics.DecodeArrival(r.Value)
				if err != nil {
					t.Errorf("fake: %v", err)
					return
				}
				f.wg.Add(1)
				go func() {
					defer f.wg.Done()
					for _, res := range respond(ctx, a) {
						if err := h.prod.Publish(ctx, n.Results(a.Reply), res); err != nil && ctx.Err() == nil {
							t.Errorf("fake publish: %v", err)
						}
					}
				}()
			})
		}
	}()
	t.Cleanup(func() {
		f.cancel()
		f.wg.Wait()
	})
	return f
}

// ok is a worker's answer to a.
func ok(a *topics.Arrival, worker string, start topics.Start, body []byte, ct string) *topics.Result {
	r := &topics.Result{ID: a.ID, Function: a.Function, Status: 200, Worker: worker, Start: start,
		DurationMs: 12.5, Source: "worker", At: time.Now()}
	r.SetBody(body, ct)
	return r
}

// call makes a request and returns the answer with its body read.
func call(t *testing.T, method, url, auth string, body string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := do(method, url, auth, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// do is call for goroutines other than the test's: it returns its error.
func do(method, url, auth string, body string) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	cl := &http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", method, url, err)
	}
	return resp, b, nil
}

// jsonError decodes a JSON error answer and checks its shape.
func jsonError(t *testing.T, resp *http.Response, b []byte) errorBody {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer Content-Type %q, want application/json (body %s)", ct, b)
	}
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error answer is not JSON: %v: %s", err, b)
	}
	if e.Error == "" {
		t.Errorf("error answer without an error message: %s", b)
	}
	return e
}

// eventually polls cond until it holds, failing after 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("still not true after 10s: %s", what)
}

// value reads the value of a single counter or gauge.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 16)
	c.Collect(ch)
	close(ch)
	var sum float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

// postAsync sends POST url from a goroutine and hands back the response,
// or one with status 0 (and the error reported) if the request failed.
func postAsync(t *testing.T, url string) <-chan *http.Response {
	t.Helper()
	got := make(chan *http.Response, 1)
	go func() {
		resp, _, err := do("POST", url, "", "")
		if err != nil {
			t.Error(err)
			resp = &http.Response{Header: http.Header{}}
		}
		got <- resp
	}()
	return got
}
