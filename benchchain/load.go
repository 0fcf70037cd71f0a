package benchchain

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sendOffset is when request i of a run at rate per second is meant to be
// sent, after the run's start: a fixed schedule, whatever the answers do.
func sendOffset(i int, rate float64) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / rate)
}

// requestCount is how many requests a run at rate for d sends.
func requestCount(rate float64, d time.Duration) int {
	return int(rate * d.Seconds())
}

// newClient is the load's HTTP client: enough idle connections per host
// that an open-loop run never queues for one.
func newClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 8192,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// load is one open-loop run against one target.
type load struct {
	client *http.Client
	// urls are the URLs of the functions the requests cycle through.
	urls []string
	// maxInFlight bounds the requests in flight (0: none): one beyond is
	// not sent and counts as "not-sent", so that a target that stops
	// answering cannot take the client's file descriptors.
	maxInFlight int
}

// outcome is the answer to one request.
type outcome struct {
	status     string        // "200", "429", "timeout", "error"...
	latency    time.Duration // from the intended send time
	retryAfter bool
}

// run offers rate requests per second for d and waits for every answer
// (each bounded by the client's timeout). Latency is measured from each
// request's intended send time, so a target that stalls the client (or a
// client that falls behind) shows in it.
func (l *load) run(ctx context.Context, target string, rate float64, d time.Duration) (Result, error) {
	n := requestCount(rate, d)
	res := Result{Target: target, Rate: rate, Duration: d.Seconds(), Statuses: map[string]int{}}
	var (
		mu       sync.Mutex
		lat      Latencies
		wg       sync.WaitGroup
		maxLag   time.Duration
		wins     windowMins
		rej      Latencies // of 429 and 503 answers
		inFlight atomic.Int64
	)
	urls := l.urls
	start := time.Now().Add(20 * time.Millisecond)
	wins.start = start
	for i := range n {
		at := start.Add(sendOffset(i, rate))
		if w := time.Until(at); w > 0 {
			t := time.NewTimer(w)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				wg.Wait()
				return res, ctx.Err()
			}
		}
		if lag := time.Since(at); lag > maxLag {
			maxLag = lag
		}
		if l.maxInFlight > 0 && inFlight.Load() >= int64(l.maxInFlight) {
			mu.Lock()
			res.Statuses["not-sent"]++
			mu.Unlock()
			res.Sent++
			continue
		}
		res.Sent++
		inFlight.Add(1)
		wg.Add(1)
		go func(url string, at time.Time) {
			defer wg.Done()
			o := l.one(ctx, url, at)
			inFlight.Add(-1)
			mu.Lock()
			defer mu.Unlock()
			res.Statuses[o.status]++
			switch {
			case o.status == "200":
				res.OK++
				lat.Add(o.latency)
				wins.add(at.Add(o.latency), o.latency)
			case strings.HasPrefix(o.status, "429") || strings.HasPrefix(o.status, "503"):
				if o.retryAfter {
					res.RetryAfter++
				}
				rej.Add(o.latency)
			}
		}(urls[i%len(urls)], at)
	}
	wg.Wait()
	res.SendLagMax = ms(maxLag)
	res.WindowMinMax = ms(wins.max())
	res.RejectP50Ms, res.RejectP99Ms, res.RejectMaxMs = ms(rej.Percentile(50)), ms(rej.Percentile(99)), ms(rej.Max())
	summarize(&res, &lat)
	return res, nil
}

var runBody = "{}"

// one sends one request meant to leave at at.
func (l *load) one(ctx context.Context, url string, at time.Time) outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(runBody))
	if err != nil {
		return outcome{status: "error"}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return outcome{status: "timeout", latency: time.Since(at)}
		}
		return outcome{status: "error", latency: time.Since(at)}
	}
	status := strconv.Itoa(resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		// A failure's reason (the controller's JSON error) joins its status.
		var e struct {
			Reason string `json:"reason"`
		}
		if b, rerr := io.ReadAll(io.LimitReader(resp.Body, 4096)); rerr == nil && json.Unmarshal(b, &e) == nil && e.Reason != "" {
			status += "/" + e.Reason
		}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o := outcome{status: status, latency: time.Since(at), retryAfter: resp.Header.Get("Retry-After") != ""}
	if err != nil {
		o.status = "error"
	}
	return o
}

// windowMinInterval is the width of the windows windowMins takes minima
// over: the controller's admission interval.
const windowMinInterval = 100 * time.Millisecond

// windowMins keeps the smallest latency of the answers that ended in each
// windowMinInterval since start: a window whose smallest latency is high
// is a standing queue, which is what the controller's admission rule
// watches for.
type windowMins struct {
	start time.Time
	mins  []time.Duration // by window; 0: no answer yet
}

func (w *windowMins) add(end time.Time, lat time.Duration) {
	i := int(end.Sub(w.start) / windowMinInterval)
	if i < 0 {
		i = 0
	}
	for len(w.mins) <= i {
		w.mins = append(w.mins, 0)
	}
	if w.mins[i] == 0 || lat < w.mins[i] {
		w.mins[i] = max(lat, 1)
	}
}

// max is the largest window minimum.
func (w *windowMins) max() time.Duration {
	var m time.Duration
	for _, v := range w.mins {
		m = max(m, v)
	}
	return m
}

// defaultMaxInFlight is the client's bound on requests in flight: half the
// file descriptors this process may open, less some for everything else
// (against the direct target both ends of each connection are here).
func defaultMaxInFlight() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<20 {
		return 100_000
	}
	return max(int(lim.Cur)/2-500, 100)
}
