package workersim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// answer is a decoded /run answer.
type answer struct {
	Code    int
	Cold    string // X-Cold-Start
	Worker  string // X-Worker
	Body    runAnswer
	Raw     string
	Elapsed time.Duration // as seen by the caller (fake time in synctest)
}

// call runs one request against h and decodes the answer.
func call(t *testing.T, h http.Handler, method, path, body string) answer {
	t.Helper()
	return callCtx(t, context.Background(), h, method, path, body)
}

func callCtx(t *testing.T, ctx context.Context, h http.Handler, method, path, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(ctx, method, path, rd)
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	a := answer{
		Code:    rec.Code,
		Cold:    rec.Header().Get("X-Cold-Start"),
		Worker:  rec.Header().Get("X-Worker"),
		Raw:     rec.Body.String(),
		Elapsed: time.Since(start),
	}
	if rec.Code == http.StatusOK && ctx.Err() == nil {
		if err := json.Unmarshal(rec.Body.Bytes(), &a.Body); err != nil {
			t.Errorf("%s %s: answer %q is not JSON: %v", method, path, a.Raw, err)
		}
	}
	return a
}

// parallel runs n calls of fns[i] at the same moment and returns the answers.
func parallel(t *testing.T, h http.Handler, fns []string) []answer {
	t.Helper()
	out := make([]answer, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { out[i] = call(t, h, "POST", "/run/"+fn, "{}") })
	}
	wg.Wait()
	return out
}

// noticeLog records eviction notices, as an http.RoundTripper (for synctest)
// or an http.Handler (for a real server).
type noticeLog struct {
	mu      sync.Mutex
	notices []recordedNotice
	status  int // answer code; 0 = 200
	got     chan struct{}
}

type recordedNotice struct {
	Method, Path, ContentType string
	Body                      map[string]any
}

func newNoticeLog() *noticeLog { return &noticeLog{got: make(chan struct{}, 1024)} }

func (l *noticeLog) record(r *http.Request) int {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	l.mu.Lock()
	l.notices = append(l.notices, recordedNotice{r.Method, r.URL.Path, r.Header.Get("Content-Type"), body})
	code := l.status
	l.mu.Unlock()
	l.got <- struct{}{}
	if code == 0 {
		code = http.StatusOK
	}
	return code
}

func (l *noticeLog) RoundTrip(r *http.Request) (*http.Response, error) {
	code := l.record(r)
	return &http.Response{StatusCode: code, Status: http.StatusText(code), Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func (l *noticeLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(l.record(r))
}

func (l *noticeLog) paths() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, n := range l.notices {
		out = append(out, n.Path)
	}
	return out
}

// wait waits, in real time, for n notices in total.
func (l *noticeLog) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		have := len(l.notices)
		l.mu.Unlock()
		if have >= n {
			return
		}
		select {
		case <-l.got:
		case <-deadline:
			t.Fatalf("got %d notices, want %d", have, n)
		}
	}
}

func newSim(t *testing.T, cfg Config) *Sim {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func within(got, want time.Duration, frac float64) bool {
	d := float64(got - want)
	return d <= frac*float64(want) && -d <= frac*float64(want)
}

func ms(a answer) time.Duration { return time.Duration(a.Body.DurationMS * float64(time.Millisecond)) }
