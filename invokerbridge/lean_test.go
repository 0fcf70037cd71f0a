package invokerbridge

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/topics"
)

// leanBridge is a bridge with only what call needs, and the worker at
// url on the lean path (failing the test when the lean path refuses it).
func leanBridge(t *testing.T, u string, maxAnswer int64) (*Bridge, worker) {
	t.Helper()
	b := &Bridge{cfg: Config{MaxAnswerBytes: maxAnswer, CallTimeout: 10 * time.Second}.WithDefaults(), client: &http.Client{}}
	w := worker{id: "w", url: strings.TrimRight(u, "/")}
	if w.lean = newLeanPool(w.url, 4); w.lean == nil {
		if !leanSupported {
			t.Skip("this platform cannot peek at an idle socket (lean_other.go), so calls take net/http's client only, which the bridge tests exercise")
		}
		t.Fatalf("lean path refuses %s", u)
	}
	t.Cleanup(w.lean.close)
	return b, w
}

// countConns serves h and counts the connections clients opened.
func countConns(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

func assign(fn string, payload string) *topics.Assignment {
	return &topics.Assignment{ID: topics.NewID(), Function: fn, Payload: []byte(payload)}
}

// A plain answer: the request is what net/http would send, the answer's
// status, headers and body come back, and the connection is reused.
func TestLeanKeepAlive(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(body)+" "+r.Host)
		mu.Unlock()
		w.Header().Set("X-Cold-Start", "1")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"n":1}`)
	})
	b, w := leanBridge(t, srv.URL+"/", 1<<10)
	for i, payload := range []string{`{"a":1}`, ``, `[1,2]`} {
		o := b.call(context.Background(), w, assign("f-1.x", payload), zerolog.Nop())
		if !o.ok || o.status != 200 || o.result != 200 || string(o.body) != `{"n":1}` || o.contentType != "application/json" ||
			o.start != topics.StartCold {
			t.Fatalf("call %d: outcome %+v", i, o)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	want := []string{"POST /run/f-1.x application/json {\"a\":1} " + host, "POST /run/f-1.x application/json {} " + host,
		"POST /run/f-1.x application/json [1,2] " + host}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 3 calls one after another, want 1 (kept alive)", n)
	}
}

// A chunked answer is read whole, and the connection is reused after it.
func TestLeanChunked(t *testing.T) {
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for i := range 3 {
			_, _ = io.WriteString(w, strings.Repeat(string(rune('a'+i)), 3000))
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
	})
	b, w := leanBridge(t, srv.URL, 1<<20)
	want := strings.Repeat("a", 3000) + strings.Repeat("b", 3000) + strings.Repeat("c", 3000)
	for i := range 2 {
		o := b.call(context.Background(), w, assign("f", "{}"), zerolog.Nop())
		if !o.ok || string(o.body) != want {
			t.Fatalf("call %d: ok %v status %d, %d bytes of body, want %d", i, o.ok, o.status, len(o.body), len(want))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// An answer with Connection: close is used, and its connection is not:
// the next call dials anew.
func TestLeanConnectionClose(t *testing.T) {
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "{}")
	})
	b, w := leanBridge(t, srv.URL, 1<<10)
	for i := range 3 {
		if o := b.call(context.Background(), w, assign("f", "{}"), zerolog.Nop()); !o.ok || string(o.body) != "{}" {
			t.Fatalf("call %d: outcome %+v", i, o)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections for 3 calls answered Connection: close, want 3", n)
	}
}

// A worker that closed its idle connections (restarted, or an idle
// timeout) costs nothing: the closed connection is noticed before a
// request is written to it.
func TestLeanServerClosedIdle(t *testing.T) {
	var calls atomic.Int32
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		calls.Add(1)
		_, _ = io.WriteString(w, "{}")
	})
	b, w := leanBridge(t, srv.URL, 1<<10)
	for i := range 3 {
		if o := b.call(context.Background(), w, assign("f", "{}"), zerolog.Nop()); !o.ok {
			t.Fatalf("call %d: outcome %+v", i, o)
		}
		srv.CloseClientConnections()
		time.Sleep(20 * time.Millisecond) // the FIN arrives
	}
	if n, c := conns.Load(), calls.Load(); n != 3 || c != 3 {
		t.Fatalf("%d connections and %d calls, want 3 of each", n, c)
	}
}

// An answer over MaxAnswerBytes is the existing 502, its connection
// closed rather than drained; one of exactly the limit passes, chunked or
// not.
func TestLeanLargeAnswer(t *testing.T) {
	const limit = 10000
	for _, chunked := range []bool{false, true} {
		srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			n := limit
			if r.URL.Path == "/run/big" {
				n = 1 << 20
			}
			if chunked {
				w.(http.Flusher).Flush()
			}
			_, _ = io.WriteString(w, strings.Repeat("x", n))
		})
		b, w := leanBridge(t, srv.URL, limit)
		o := b.call(context.Background(), w, assign("big", "{}"), zerolog.Nop())
		if o.ok || o.result != http.StatusBadGateway || o.reason != topics.ReasonWorkerFailed || o.body != nil ||
			o.errMsg != "worker answer larger than 10000 bytes" {
			t.Fatalf("chunked %v: too large: outcome %+v", chunked, o)
		}
		o = b.call(context.Background(), w, assign("fit", "{}"), zerolog.Nop())
		if !o.ok || len(o.body) != limit {
			t.Fatalf("chunked %v: at the limit: ok %v status %d, %d bytes", chunked, o.ok, o.status, len(o.body))
		}
		if n := conns.Load(); n != 2 {
			t.Fatalf("chunked %v: %d connections, want 2 (the too-large answer's closed)", chunked, n)
		}
	}
}

// A worker that does not answer by the assignment's deadline: 504, and
// its connection is not reused.
func TestLeanDeadline(t *testing.T) {
	release := make(chan struct{})
	srv, conns := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/run/slow" {
			<-release
		}
		_, _ = io.WriteString(w, "{}")
	})
	defer close(release)
	b, w := leanBridge(t, srv.URL, 1<<10)
	a := assign("slow", "{}")
	a.Deadline = time.Now().Add(200 * time.Millisecond)
	o := b.call(context.Background(), w, a, zerolog.Nop())
	if o.ok || o.result != http.StatusGatewayTimeout || o.reason != topics.ReasonTimeout ||
		!strings.HasPrefix(o.errMsg, "worker did not answer within the deadline") {
		t.Fatalf("outcome %+v, want 504 timeout", o)
	}
	if o := b.call(context.Background(), w, assign("fast", "{}"), zerolog.Nop()); !o.ok {
		t.Fatalf("next call: outcome %+v", o)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the timed-out one closed)", n)
	}
}

// A call cancelled by the drain timeout ends at once as the shutdown 502.
func TestLeanCancel(t *testing.T) {
	release := make(chan struct{})
	srv, _ := countConns(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-release
	})
	defer close(release)
	b, w := leanBridge(t, srv.URL, 1<<10)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	o := b.call(ctx, w, assign("f", "{}"), zerolog.Nop())
	if o.ok || o.result != http.StatusBadGateway || o.reason != topics.ReasonWorkerFailed || o.errMsg != errShutdown.Error() {
		t.Fatalf("outcome %+v, want the shutdown 502", o)
	}
}

// A worker that cannot be reached: 502 worker_failed with the dial error,
// worded as net/http's client words it.
func TestLeanDialError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	_ = l.Close()
	b, w := leanBridge(t, u, 1<<10)
	o := b.call(context.Background(), w, assign("f", "{}"), zerolog.Nop())
	want := `calling the worker: Post "` + u + `/run/f": dial tcp ` + l.Addr().String() + `: connect: connection refused`
	if o.ok || o.result != http.StatusBadGateway || o.reason != topics.ReasonWorkerFailed || o.errMsg != want {
		t.Fatalf("outcome %+v\nwant errMsg %q", o, want)
	}
	// net/http's client says the same.
	b.client = &http.Client{}
	w.lean = nil
	if o2 := b.call(context.Background(), w, assign("f", "{}"), zerolog.Nop()); o2.errMsg != want {
		t.Fatalf("client: %q, lean: %q", o2.errMsg, want)
	}
}

// Which workers and functions the lean path takes: plain http only, and
// function names that need no escaping (others take the client).
func TestLeanServes(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:5000": true, "http://w.example/ol": true, "http://w.example": true,
		"https://127.0.0.1:5000": false, "http://u:p@w.example": false, "http://w.example?x=1": false,
		"http://w.example/a%20b": false,
	} {
		p := newLeanPool(u, 1)
		if (p != nil) != (want && leanSupported) {
			t.Errorf("%s: lean %v, want %v", u, p != nil, want)
		}
		if p != nil && u == "http://w.example" && p.addr != "w.example:80" {
			t.Errorf("%s: dials %s, want w.example:80", u, p.addr)
		}
	}
	for fn, want := range map[string]bool{"f-1_x.y": true, "a b": false, "a?b": false, "a%2f": false, "é": false} {
		if safePath(fn) != want {
			t.Errorf("safePath(%q) = %v", fn, !want)
		}
	}
}
