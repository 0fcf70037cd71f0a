package controllerbridge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/topics"
)

// send makes a request with headers hdr (Add'ed in order) and returns the
// answer with its body read.
func send(method, url string, hdr [][2]string, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range hdr {
		req.Header.Add(kv[0], kv[1])
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// keyed is send with one Idempotency-Key, for the test's goroutine.
func keyed(t *testing.T, url, key string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := send("POST", url, [][2]string{{HeaderIdempotencyKey, key}}, "")
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// arrivalsOnTopic counts the records on the arrivals topic.
func arrivalsOnTopic(t *testing.T, h *harness) int64 {
	t.Helper()
	ends, err := kadm.NewClient(h.prod.Client()).ListEndOffsets(context.Background(), h.cfg.Topics.Names().Arrivals())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// TestRunIdempotencyKey: requests with the same key for the same function
// share one arrival and one answer — while the first waits and after its
// result came; the same key for another function is another activation.
func TestRunIdempotencyKey(t *testing.T) {
	h := start(t, nil)
	release := make(chan struct{})
	var n atomic.Int64
	startFake(t, h, func(ctx context.Context, a *topics.Arrival) []*topics.Result {
		i := n.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil
		}
		return []*topics.Result{ok(a, "w1", topics.StartWarm, fmt.Appendf(nil, `{"n":%d}`, i), "")}
	})
	type answer struct {
		resp *http.Response
		body []byte
	}
	async := func() <-chan answer {
		got := make(chan answer, 1)
		go func() {
			resp, body, err := send("POST", h.base+"/run/f", [][2]string{{HeaderIdempotencyKey, "order-42"}}, "")
			if err != nil {
				t.Error(err)
				resp = &http.Response{Header: http.Header{}}
			}
			got <- answer{resp, body}
		}()
		return got
	}
	first := async()
	eventually(t, "first request waiting", func() bool { return h.c.book.waiting() == 1 })
	second := async()
	eventually(t, "second request waiting", func() bool { return h.c.book.waiting() == 2 })
	close(release)
	a1, a2 := <-first, <-second
	if a1.resp.StatusCode != 200 || a2.resp.StatusCode != 200 || string(a1.body) != `{"n":1}` || string(a2.body) != string(a1.body) {
		t.Fatalf("answers %d %s and %d %s, want the same 200", a1.resp.StatusCode, a1.body, a2.resp.StatusCode, a2.body)
	}
	id := a1.resp.Header.Get(HeaderActivationID)
	if id == "" || a2.resp.Header.Get(HeaderActivationID) != id {
		t.Errorf("activation ids %q and %q", id, a2.resp.Header.Get(HeaderActivationID))
	}
	// After the result: the stored result, still one arrival.
	resp, body := keyed(t, h.base+"/run/f", "order-42")
	if resp.StatusCode != 200 || string(body) != `{"n":1}` || resp.Header.Get(HeaderActivationID) != id {
		t.Errorf("after the result: %d %s id %q", resp.StatusCode, body, resp.Header.Get(HeaderActivationID))
	}
	resp, body = keyed(t, h.base+"/run/f?blocking=false", "order-42")
	if resp.StatusCode != 202 || resp.Header.Get(HeaderActivationID) != id {
		t.Errorf("non-blocking after the result: %d %s", resp.StatusCode, body)
	}
	if got := arrivalsOnTopic(t, h); got != 1 {
		t.Errorf("%d arrivals published for one key, want 1", got)
	}
	// The same key for another function is another activation.
	resp, body = keyed(t, h.base+"/run/g", "order-42")
	if resp.StatusCode != 200 || string(body) != `{"n":2}` || resp.Header.Get(HeaderActivationID) == id {
		t.Errorf("other function: %d %s id %q", resp.StatusCode, body, resp.Header.Get(HeaderActivationID))
	}
	if got := arrivalsOnTopic(t, h); got != 2 {
		t.Errorf("%d arrivals published for two functions, want 2", got)
	}
}

func TestRunBadIdempotencyKey(t *testing.T) {
	h := start(t, nil)
	for _, tc := range []struct {
		name string
		keys []string
		want string
	}{
		{"empty", []string{""}, "empty"},
		{"too long", []string{strings.Repeat("k", 256)}, "more than 255"},
		{"tab", []string{"a\tb"}, "printable ASCII"},
		{"not ASCII", []string{"clé"}, "printable ASCII"},
		{"twice", []string{"a", "b"}, "sent 2 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr [][2]string
			for _, k := range tc.keys {
				hdr = append(hdr, [2]string{HeaderIdempotencyKey, k})
			}
			resp, body, err := send("POST", h.base+"/run/f", hdr, "")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 || !strings.Contains(string(body), HeaderIdempotencyKey) || !strings.Contains(string(body), tc.want) {
				t.Errorf("%d %s, want 400 saying %q", resp.StatusCode, body, tc.want)
			}
		})
	}
	if got := arrivalsOnTopic(t, h); got != 0 {
		t.Errorf("%d arrivals published for bad keys", got)
	}
}

// TestRunBlockingResultNotKept: once a blocking request is answered, its
// result is not kept (GET /activations/<id> is 404), unless it carried an
// Idempotency-Key; a non-blocking one's is.
func TestRunBlockingResultNotKept(t *testing.T) {
	h := start(t, nil)
	startFake(t, h, func(_ context.Context, a *topics.Arrival) []*topics.Result {
		return []*topics.Result{ok(a, "w1", topics.StartWarm, []byte(`"`+strings.Repeat("x", 100_000)+`"`), "")}
	})
	resp, body := call(t, "POST", h.base+"/run/big", "", "")
	if resp.StatusCode != 200 || len(body) != 100_002 {
		t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, body := call(t, "GET", h.base+"/activations/"+resp.Header.Get(HeaderActivationID), "", ""); resp.StatusCode != 404 {
		t.Errorf("answered blocking result: %d %.100s", resp.StatusCode, body)
	}
	if st := h.c.book.stats(); st.Bytes >= 100_000 {
		t.Errorf("the book still holds %d bytes", st.Bytes)
	}
	resp, _ = keyed(t, h.base+"/run/big", "k")
	if resp, body := call(t, "GET", h.base+"/activations/"+resp.Header.Get(HeaderActivationID), "", ""); resp.StatusCode != 200 {
		t.Errorf("answered keyed result: %d %.100s", resp.StatusCode, body)
	}
}
