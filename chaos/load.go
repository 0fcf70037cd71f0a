package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// loader sends open-loop load to the controller: request i is due at
// start + i/rate whatever became of the others.
type loader struct {
	base    string // http://controller
	fns     []string
	rate    float64
	timeout time.Duration // ?timeout= of each request
	slack   time.Duration // beyond the timeout before a request is a hang
	run     string        // nonce prefix unique to the run
	client  *http.Client
}

func newLoader(base string, fns []string, rate float64, timeout, slack time.Duration, run string) *loader {
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	return &loader{base: base, fns: fns, rate: rate, timeout: timeout, slack: slack, run: run,
		client: &http.Client{Transport: tr}}
}

func (l *loader) interval() time.Duration { return time.Duration(float64(time.Second) / l.rate) }

// drive sends load for d from start, or until stop closes, and returns
// every request's sample once each is answered or given up on. Offsets
// are from start.
func (l *loader) drive(ctx context.Context, scenario string, start time.Time, d time.Duration, stop <-chan struct{}) []Sample {
	iv := l.interval()
	n := int(d / iv)
	samples := make([]Sample, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * iv)
		if w := time.Until(due); w > 0 {
			select {
			case <-ctx.Done():
				stop = ctx.Done()
			case <-stop:
			case <-time.After(w):
			}
		}
		select {
		case <-stop:
			wg.Wait()
			return samples[:i]
		default:
		}
		s := &samples[i]
		s.Fn = l.fns[i%len(l.fns)]
		s.Nonce = fmt.Sprintf("%s-%s-%d", l.run, scenario, i)
		s.Intended = due.Sub(start)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.send(ctx, start, s)
		}()
	}
	wg.Wait()
	return samples
}

// send makes one request and fills in s.
func (l *loader) send(ctx context.Context, start time.Time, s *Sample) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout+l.slack)
	defer cancel()
	payload := `{"chaos":"` + s.Nonce + `"}`
	url := fmt.Sprintf("%s/run/%s?timeout=%s", l.base, s.Fn, l.timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(payload))
	if err != nil {
		s.Err, s.Done = ErrRefused, time.Since(start)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	s.Sent = time.Since(start)
	resp, err := l.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
	}
	s.Done = time.Since(start)
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.Err = ErrHang
	case err != nil:
		s.Err = ErrRefused
	default:
		s.Status = resp.StatusCode
		s.Outcome = resp.Header.Get("X-Outcome")
		s.Worker = resp.Header.Get("X-Worker")
		if s.Status != http.StatusOK {
			var e struct {
				Reason string `json:"reason"`
			}
			if json.Unmarshal(body, &e) == nil {
				s.Reason = e.Reason
			}
		}
	}
}

// functions returns n function names: FunctionBench bases, copies -1, -2, …
func functions(n int) []string {
	bases := []string{"linpack", "matmul", "float_operation", "pyaes", "chameleon", "json_dumps_loads", "gzip_compression", "dd"}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", bases[i%len(bases)], i/len(bases)+1)
	}
	return out
}
