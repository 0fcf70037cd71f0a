package benchchain

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
	client    *http.Client
	base      string // target base URL
	query     string // appended to every /run URL ("" or "?...")
	functions int
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
		mu     sync.Mutex
		lat    Latencies
		wg     sync.WaitGroup
		maxLag time.Duration
	)
	urls := make([]string, l.functions)
	for f := range urls {
		urls[f] = l.base + "/run/f-" + strconv.Itoa(f) + l.query
	}
	start := time.Now().Add(20 * time.Millisecond)
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
		res.Sent++
		wg.Add(1)
		go func(url string, at time.Time) {
			defer wg.Done()
			o := l.one(ctx, url, at)
			mu.Lock()
			defer mu.Unlock()
			res.Statuses[o.status]++
			switch o.status {
			case "200":
				res.OK++
				lat.Add(o.latency)
			case "429", "503":
				if o.retryAfter {
					res.RetryAfter++
				}
				res.RejectMaxMs = max(res.RejectMaxMs, ms(o.latency))
			}
		}(urls[i%len(urls)], at)
	}
	wg.Wait()
	res.SendLagMax = ms(maxLag)
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
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	o := outcome{status: strconv.Itoa(resp.StatusCode), latency: time.Since(at), retryAfter: resp.Header.Get("Retry-After") != ""}
	if err != nil {
		o.status = "error"
	}
	return o
}
