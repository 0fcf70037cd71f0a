package invokerbridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/tracing"
)

// outcome is what one call to a worker came to.
type outcome struct {
	ok          bool   // the worker answered 2xx
	status      int    // the worker's HTTP status; 0 when none came
	result      int    // the HTTP status of the result
	reason      string // topics.Reason* for failures the bridge diagnosed
	errMsg      string // human-readable cause of a failure
	body        []byte
	contentType string
	start       topics.Start
	duration    time.Duration
}

// errShutdown is the cause of a call cancelled by the drain timeout.
var errShutdown = errors.New("invoker bridge shut down before the worker answered")

// callClient makes the call with net/http's client (tracing on, a custom
// transport, or a worker the lean path cannot serve). A non-empty reason
// in the outcome, with a nil error, ends the call at once.
func (b *Bridge) callClient(parent context.Context, w worker, a *topics.Assignment, payload []byte, deadline time.Time) (outcome, error) {
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/run/"+a.Function, bytes.NewReader(payload))
	if err != nil {
		return outcome{result: http.StatusBadGateway, reason: topics.ReasonWorkerFailed, errMsg: "building the request: " + err.Error()}, nil
	}
	req.Header.Set("Content-Type", "application/json")
	o := outcome{}
	resp, err := b.client.Do(req)
	if err != nil {
		return o, err
	}
	o.status = resp.StatusCode
	o.contentType = resp.Header.Get("Content-Type")
	o.start = startOf(resp.Header.Get("X-Cold-Start"))
	o.body, err = io.ReadAll(io.LimitReader(resp.Body, b.cfg.MaxAnswerBytes+1))
	_ = resp.Body.Close()
	if err == nil && int64(len(o.body)) > b.cfg.MaxAnswerBytes {
		return b.tooLarge(o), nil
	}
	return o, err
}

// callLean makes the call on the lean path (see lean.go).
func (b *Bridge) callLean(parent context.Context, w worker, a *topics.Assignment, payload []byte, deadline time.Time) (outcome, error) {
	lc, err := w.lean.do(parent, deadline, a.Function, payload, b.cfg.MaxAnswerBytes)
	o := outcome{status: lc.status, contentType: lc.contentType, start: startOf(lc.cold), body: lc.body}
	if err == nil && lc.tooLarge {
		return b.tooLarge(o), nil
	}
	return o, err
}

// tooLarge is the outcome of an answer over MaxAnswerBytes.
func (b *Bridge) tooLarge(o outcome) outcome {
	o.body = nil
	o.ok, o.result, o.reason = false, http.StatusBadGateway, topics.ReasonWorkerFailed
	o.errMsg = fmt.Sprintf("worker answer larger than %d bytes", b.cfg.MaxAnswerBytes)
	return o
}

// startOf is the start kind an X-Cold-Start header says.
func startOf(h string) topics.Start {
	switch h {
	case "1":
		return topics.StartCold
	case "0":
		return topics.StartWarm
	}
	return ""
}

// call runs a on worker w: POST <url>/run/<fn> with the raw payload, with
// the assignment's deadline (or the call timeout) as the context deadline.
// It never fails: every failure becomes an outcome.
func (b *Bridge) call(parent context.Context, w worker, a *topics.Assignment, log zerolog.Logger) outcome {
	start := time.Now()
	deadline := a.Deadline
	if deadline.IsZero() {
		deadline = start.Add(b.cfg.CallTimeout)
	}
	if !deadline.After(start) {
		return outcome{result: http.StatusGatewayTimeout, reason: topics.ReasonTimeout,
			errMsg: fmt.Sprintf("deadline %s passed before the call", deadline.UTC().Format(time.RFC3339Nano))}
	}
	payload := []byte(a.Payload)
	if len(payload) == 0 {
		payload = []byte("{}") // OpenLambda's runtime wants a JSON body on POST
	}
	var o outcome
	var err error
	if w.lean != nil && !tracing.Enabled() && safePath(a.Function) {
		o, err = b.callLean(parent, w, a, payload, deadline)
	} else {
		o, err = b.callClient(parent, w, a, payload, deadline)
	}
	o.duration = time.Since(start)
	if err == nil && o.reason != "" { // a request that could not be built, or an answer too large
		return o
	}
	if err != nil {
		o.body, o.contentType = nil, ""
		switch {
		case errors.Is(parent.Err(), context.Canceled):
			o.result, o.reason, o.errMsg = http.StatusBadGateway, topics.ReasonWorkerFailed, errShutdown.Error()
		case !time.Now().Before(deadline):
			o.result, o.reason = http.StatusGatewayTimeout, topics.ReasonTimeout
			o.errMsg = fmt.Sprintf("worker did not answer within the deadline (%v)", deadline.Sub(start).Round(time.Millisecond))
		default:
			o.result, o.reason, o.errMsg = http.StatusBadGateway, topics.ReasonWorkerFailed, "calling the worker: "+err.Error()
		}
		log.Debug().Err(err).Str("id", a.ID).Str("fn", a.Function).Msg("call failed")
		return o
	}
	o.result = o.status
	if o.status >= 200 && o.status < 300 {
		o.ok = true
		return o
	}
	o.errMsg = "worker answered " + strconv.Itoa(o.status)
	if msg := strings.TrimSpace(string(o.body)); msg != "" && len(msg) < 200 {
		o.errMsg += ": " + msg
	}
	if o.status < 100 || o.status > 599 { // not representable in a result
		o.result, o.reason = http.StatusBadGateway, topics.ReasonWorkerFailed
	}
	return o
}

// publishOutcome publishes the completion and, when someone waits for it,
// the result of a call, and reports whether the completion was
// acknowledged (only then may the assignment be finished). A result that
// cannot be published is replaced by a body-less 502 once, then given up
// (logged and counted): the scheduler's timeout answers the caller. The
// records carry the trace context of tctx's span; tctx, never cancelled
// (see publishCtx), does not bound the publishing: PublishTimeout does.
func (b *Bridge) publishOutcome(tctx context.Context, w worker, a *topics.Assignment, o outcome, log zerolog.Logger) bool {
	now := time.Now()
	ms := float64(o.duration.Microseconds()) / 1000
	comp := &topics.Completion{
		ID: a.ID, Function: a.Function, Worker: w.id, OK: o.ok, Status: o.status, Start: o.start,
		WarmHint: a.Warm, DurationMs: ms, Error: o.errMsg, At: now,
	}
	var res *topics.Result
	if a.Reply != "" {
		res = &topics.Result{
			ID: a.ID, Function: a.Function, Status: o.result, Worker: w.id, Start: o.start, DurationMs: ms,
			Reason: o.reason, Error: o.errMsg, Source: "worker", At: now,
		}
		if o.status != 0 {
			res.SetBody(o.body, o.contentType)
		}
	}
	b.met.calls.WithLabelValues(w.id, strconv.Itoa(o.result)).Inc()
	b.met.duration.WithLabelValues(w.id).Observe(o.duration.Seconds())
	if o.ok {
		s := string(o.start)
		if s == "" {
			s = "unknown"
		}
		b.met.starts.WithLabelValues(w.id, s).Inc()
	}
	ev := log.Debug()
	if !o.ok {
		ev = log.Info()
	}
	ev.Str("id", a.ID).Str("fn", a.Function).Int("status", o.result).Str("start", string(o.start)).
		Float64("duration_ms", ms).Str("error", o.errMsg).Msg("call finished")

	ctx, cancel := context.WithTimeout(tctx, b.cfg.PublishTimeout)
	defer cancel()
	// Both records are handed to the producer back to back, before either
	// is waited for, so that they usually share one produce request; only
	// a failed first attempt takes the retry paths (the result's on a
	// goroutine of its own, so that the completion's retries, which run
	// until ctx ends, do not hold it up).
	var resFirst <-chan error
	resTopic := ""
	if res != nil {
		resTopic = b.names.Results(a.Reply)
		resFirst = b.publishStart(ctx, resTopic, res)
	}
	compFirst := b.publishStart(ctx, b.names.WorkerEvents(), comp)
	resDone := make(chan struct{})
	if res == nil {
		close(resDone)
	} else if err := b.publishWait(ctx, resFirst, res, "result"); err == nil {
		close(resDone)
	} else {
		go func() {
			defer close(resDone)
			if err = b.publishRetry(ctx, resTopic, res, "result", 2, err); err != nil {
				log.Warn().Err(err).Str("id", a.ID).Msg("result not published; trying a body-less 502")
				fallback := &topics.Result{ID: a.ID, Function: a.Function, Status: http.StatusBadGateway, Worker: w.id,
					Reason: topics.ReasonWorkerFailed, Error: "the worker's answer could not be published: " + err.Error(),
					Source: "worker", At: time.Now()}
				if err := b.publishRetry(ctx, resTopic, fallback, "result", 2, nil); err != nil {
					log.Error().Err(err).Str("id", a.ID).Str("topic", resTopic).Msg("result lost")
				}
			}
		}()
	}
	err := b.publishWait(ctx, compFirst, comp, "completion")
	if err != nil {
		err = b.publishRetry(ctx, b.names.WorkerEvents(), comp, "completion", 0, err)
	}
	<-resDone
	if err != nil {
		log.Error().Err(err).Str("id", a.ID).Msg("completion not published; the assignment is finished without it")
		return false
	}
	return true
}

// publishStart hands ev to the producer without waiting; the channel
// yields the delivery error (nil once acknowledged).
func (b *Bridge) publishStart(ctx context.Context, topic string, ev topics.Event) <-chan error {
	done := make(chan error, 1) // the producer calls back once, even after nobody waits
	b.prod.PublishAsync(ctx, topic, ev, func(err error) { done <- err })
	return done
}

// publishWait waits for the outcome of a publishStart, or for ctx to end
// (the record may then still be delivered); a failure is counted under
// kind.
func (b *Bridge) publishWait(ctx context.Context, done <-chan error, ev topics.Event, kind string) error {
	var err error
	select {
	case err = <-done:
		if err != nil {
			err = fmt.Errorf("publish %s: %w", ev.Kind(), err)
		}
	case <-ctx.Done():
		err = fmt.Errorf("publish %s: outcome unknown: %w", ev.Kind(), ctx.Err())
	}
	if err != nil {
		b.met.pubErrors.WithLabelValues(kind).Inc()
	}
	return err
}

// publishRetry publishes ev, retrying with backoff until it is acknowledged,
// ctx ends, or tries (when > 0) more attempts have failed. prev, when not
// nil, is the error of an attempt already made: the first retry then
// waits out the backoff.
func (b *Bridge) publishRetry(ctx context.Context, topic string, ev topics.Event, kind string, tries int, prev error) error {
	backoff := 50 * time.Millisecond
	err := prev
	for i := 0; ; i++ {
		if err != nil {
			if ctx.Err() != nil || tries > 0 && i >= tries {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
		if err = b.publishWait(ctx, b.publishStart(ctx, topic, ev), ev, kind); err == nil {
			return nil
		}
	}
}

// probe is what a health probe of a worker found.
type probe uint8

const (
	probeReady   probe = iota // GET /status answered 200 "ready" in time
	probeNo                   // it answered something else, or refused
	probeTimeout              // no answer within the health timeout
)

// healthy probes the worker at base: GET /status must answer 200 and
// "ready" within the health timeout.
func (b *Bridge) healthy(ctx context.Context, base string) probe {
	pctx, cancel := context.WithTimeout(ctx, b.cfg.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, base+"/status", nil)
	if err != nil {
		return probeNo
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if pctx.Err() != nil && ctx.Err() == nil {
			return probeTimeout
		}
		return probeNo
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	switch {
	case err != nil && pctx.Err() != nil && ctx.Err() == nil:
		return probeTimeout
	case err == nil && resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ready":
		return probeReady
	}
	return probeNo
}

// judgeHealth is what a heartbeat says of a worker's health: ready, or a
// probe that only timed out while the worker answered a call 2xx within
// the last interval — a busy worker, not a sick one (under overload the
// probe of a CPU-starved worker timed out on every third heartbeat, and
// each took the worker out of new work for a second: issue 12). A worker
// that answers "not ready", or refuses, is unhealthy whatever it did
// before; one whose calls stopped succeeding is unhealthy at the first
// timed-out probe after the interval.
func judgeHealth(p probe, lastOK, now time.Time, interval time.Duration) bool {
	switch p {
	case probeReady:
		return true
	case probeTimeout:
		return !lastOK.IsZero() && now.Sub(lastOK) < interval
	}
	return false
}
