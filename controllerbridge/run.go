package controllerbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/pullsched/pullsched/httpserve"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/tracing"
)

// Headers of a /run answer.
const (
	HeaderActivationID = "X-Activation-Id"
	HeaderWorker       = "X-Worker"
	HeaderColdStart    = "X-Cold-Start" // "1" cold, "0" warm; absent when unknown
	// HeaderOutcome is "unknown" on a 503 after which the function may still
	// run (the broker did not acknowledge the arrival in time, or the
	// controller shut down while waiting): retrying may run it twice, unless
	// the retry carries the same Idempotency-Key.
	HeaderOutcome = "X-Outcome"
)

// HeaderIdempotencyKey is the /run request header whose value names the
// activation: see handleRun.
const HeaderIdempotencyKey = "Idempotency-Key"

// MaxIdempotencyKey is the longest Idempotency-Key accepted (400 beyond).
const MaxIdempotencyKey = 255

// errorBody is the JSON of every failure answer about an activation.
type errorBody struct {
	Error        string `json:"error"`
	Reason       string `json:"reason,omitempty"`
	ActivationID string `json:"activation_id,omitempty"`
}

// runRequest is a parsed /run request.
type runRequest struct {
	fn       string
	payload  json.RawMessage
	timeout  time.Duration
	blocking bool
	class    int
	key      string // Idempotency-Key, "" without
}

// parseRun validates a /run request; its errors are 4xx answers.
func (c *Controller) parseRun(w http.ResponseWriter, r *http.Request) (*runRequest, error) {
	req := &runRequest{fn: r.PathValue("fn"), timeout: c.cfg.DefaultTimeout, blocking: true}
	if err := topics.CheckFunction(req.fn); err != nil {
		return nil, httpserve.Errorf(http.StatusBadRequest, "bad function name %q: want 1-128 of letters, digits, '_', '.', '-'", req.fn)
	}
	if keys := r.Header.Values(HeaderIdempotencyKey); len(keys) > 0 {
		if len(keys) > 1 {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad %s: sent %d times, want once", HeaderIdempotencyKey, len(keys))
		}
		if err := checkIdempotencyKey(keys[0]); err != nil {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad %s: %v", HeaderIdempotencyKey, err)
		}
		req.key = keys[0]
	}
	var q url.Values // parsing an empty query would still allocate its map
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	if v := q.Get("timeout"); v != "" {
		d, err := parseTimeout(v)
		if err != nil {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad timeout %q: %v", v, err)
		}
		if d < MinTimeout {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad timeout %q: less than the minimum %s", v, MinTimeout)
		}
		if d > c.cfg.MaxTimeout {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad timeout %q: more than the maximum %s", v, c.cfg.MaxTimeout)
		}
		req.timeout = d
	}
	if v := q.Get("blocking"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad blocking %q: want true or false", v)
		}
		req.blocking = b
	}
	if v := q.Get("class"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad class %q: want an integer", v)
		}
		req.class = n
	}
	body, err := c.readBody(w, r)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, httpserve.Errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", mb.Limit)
		}
		return nil, httpserve.Errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) { // one scan on the way in; Unmarshal only for its message
		var raw json.RawMessage
		err := json.Unmarshal(body, &raw)
		return nil, httpserve.Errorf(http.StatusBadRequest, "body is not JSON: %v", err)
	}
	req.payload = body
	return req, nil
}

// readBody reads the body of r, at most MaxBody bytes. A body of known
// length within MaxBody is read into a buffer of its size at once, rather
// than through a growing one and a MaxBytesReader; any other goes the
// general way, whose *http.MaxBytesError means it was too large.
func (c *Controller) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n == 0 {
		return nil, nil
	} else if n > 0 && n <= c.cfg.MaxBody {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the body ended before its Content-Length
			}
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, c.cfg.MaxBody))
}

// checkIdempotencyKey says what is wrong with an Idempotency-Key, if
// anything: it must be 1 to MaxIdempotencyKey printable ASCII characters.
func checkIdempotencyKey(k string) error {
	if k == "" {
		return errors.New("empty")
	}
	if len(k) > MaxIdempotencyKey {
		return fmt.Errorf("%d bytes long, more than %d", len(k), MaxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return fmt.Errorf("byte %d is %#x: want printable ASCII", i, k[i])
		}
	}
	return nil
}

// parseTimeout reads a Go duration ("1m30s") or a number of seconds ("90",
// "2.5"); it must be positive. parseRun also holds it to [MinTimeout,
// MaxTimeout].
func parseTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		s, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || math.IsNaN(s) || math.IsInf(s, 0) {
			return 0, errors.New("want a duration such as 30s or a number of seconds")
		}
		if s > float64(math.MaxInt64/int64(time.Second)) {
			return 0, errors.New("too large")
		}
		d = time.Duration(s * float64(time.Second))
	}
	if d <= 0 {
		return 0, errors.New("must be positive")
	}
	return d, nil
}

// handleRun serves POST|GET /run/<fn>.
//
// With an Idempotency-Key header (1-255 printable ASCII characters; 400
// otherwise) the key names the activation, per function, for as long as the
// controller remembers it (ActivationTTL, MaxActivations,
// MaxActivationBytes): a request with a key already seen publishes nothing
// and gets the first request's answer — the result when it has come (a
// blocking request still waiting for it waits for the same result), else
// 202 with the activation id when non-blocking. The first request's payload
// and parameters win. A 503 with "X-Outcome: unknown" means the arrival may
// still run: retrying with the same key cannot run it twice, retrying
// without one may.
func (c *Controller) handleRun(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost { // the mux lets HEAD through GET routes
		return &httpserve.Error{Status: http.StatusMethodNotAllowed, Msg: "use POST or GET /run/<function>",
			Header: http.Header{"Allow": {"GET, POST"}}}
	}
	if c.draining.Load() {
		w.Header().Set("Connection", "close")
		return httpserve.Errorf(http.StatusServiceUnavailable, "controller is shutting down")
	}
	req, err := c.parseRun(w, r)
	if err != nil {
		return err
	}
	now := time.Now()
	if !c.adm.admit(now, c.book.waiting()) {
		return c.writeFailure(w, http.StatusTooManyRequests, "", topics.ReasonOverloaded,
			"the chain is behind: requests wait longer than the admission target; retry later")
	}
	a := &topics.Arrival{
		ID:       topics.NewID(),
		Function: req.fn,
		Payload:  req.payload,
		Reply:    c.cfg.ID,
		Class:    req.class,
		Arrived:  now,
		Deadline: now.Add(req.timeout),
	}
	waitUntil := a.Deadline.Add(c.cfg.ResultMargin)
	key := ""
	if req.key != "" {
		key = idemKey(req.fn, req.key)
	}

	// The waiter exists before the arrival does, so no result can slip by.
	cl, ok := c.book.claim(a.ID, key, req.blocking, now, waitUntil)
	if !ok {
		// Refused before the activation existed: its id names nothing.
		return c.writeFailure(w, http.StatusTooManyRequests, "", topics.ReasonOverloaded,
			fmt.Sprintf("too many requests waiting (%d)", c.cfg.MaxWaiting))
	}
	if cl.existing {
		c.log.Debug().Str("activation", cl.id).Str("fn", a.Function).Bool("result", cl.res != nil).
			Msg("idempotency key seen before: answering for its activation")
		switch {
		case !req.blocking:
			return c.writeAccepted(w, cl.id)
		case cl.res != nil:
			return c.writeResult(w, cl.res)
		}
		return c.await(w, r, req, cl.id, cl.ch, waitUntil)
	}
	if err, uncertain := c.publish(r.Context(), min(c.cfg.PublishTimeout, req.timeout), c.arrivals, a); err != nil {
		if errors.Is(err, errTooLarge) || errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			// The client's to fix, not the broker's: nothing was published.
			c.book.forget(a.ID)
			return httpserve.Errorf(http.StatusRequestEntityTooLarge, "request too large for one record: %v", err)
		}
		c.m.pubErrors.Inc()
		msg := "could not publish the request: " + err.Error()
		if uncertain {
			// The broker may still take it: keep the activation (and its
			// idempotency key) so that a result, if one comes, can be
			// fetched, and a retry with the key publishes nothing new.
			c.book.unwait(a.ID, cl.ch)
			w.Header().Set(HeaderOutcome, "unknown")
			msg = "the broker did not acknowledge the request in time; it may still run " +
				"(retrying without the same Idempotency-Key may run it twice): " + err.Error()
		} else {
			c.book.forget(a.ID)
		}
		if r.Context().Err() != nil {
			c.m.gone.Inc()
			return nil // the client is gone; nobody reads an answer
		}
		c.log.Warn().Str("activation", cl.id).Str("fn", a.Function).Err(err).Bool("uncertain", uncertain).
			Msg("publishing arrival failed")
		return c.writeFailure(w, http.StatusServiceUnavailable, a.ID, "", msg)
	}
	c.m.published.Inc()

	if !req.blocking {
		return c.writeAccepted(w, a.ID)
	}
	return c.await(w, r, req, a.ID, cl.ch, waitUntil)
}

// writeAccepted answers a non-blocking request: 202 with the activation id.
func (c *Controller) writeAccepted(w http.ResponseWriter, id string) error {
	w.Header().Set("Location", "/activations/"+id)
	w.Header().Set(HeaderActivationID, id)
	httpserve.WriteJSON(w, http.StatusAccepted, map[string]string{"activation_id": id})
	return nil
}

// await waits for the result of activation id on ch and answers with it,
// or with 504 at the request's deadline (waitUntil less ResultMargin): no
// client is answered after its deadline; a later result is kept for GET
// /activations/<id>. A result answered with is dropped from the book
// unless req has an idempotency key: nobody else can ask for it.
func (c *Controller) await(w http.ResponseWriter, r *http.Request, req *runRequest, id string, ch <-chan *topics.Result, waitUntil time.Time) error {
	deadline := waitUntil.Add(-c.cfg.ResultMargin)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case res := <-ch:
		if res == nil { // another request with the same key could not publish it
			return c.writeFailure(w, http.StatusServiceUnavailable, id, "",
				"the request with this Idempotency-Key could not be published; retry")
		}
		c.book.drop(id) // first, so that a GET right after the answer finds it gone
		// What the chain added: the wait since arrival less the function's run.
		now := time.Now()
		arrived := deadline.Add(-req.timeout)
		if res.Reason == topics.ReasonOverloaded && res.Source == "scheduler" {
			c.adm.shedAnswer(now, c.book.waiting()) // the scheduler is behind: admission.go
		} else {
			c.adm.observe(now, now.Sub(arrived)-time.Duration(res.DurationMs*float64(time.Millisecond)), c.book.waiting())
		}
		return c.writeResult(w, res)
	case <-timer.C:
		c.book.unwait(id, ch)
		c.log.Debug().Str("activation", id).Str("fn", req.fn).Msg("no result before the deadline")
		return c.writeFailure(w, http.StatusGatewayTimeout, id, topics.ReasonTimeout,
			fmt.Sprintf("no result within %s; a later one is kept for GET /activations/%s", req.timeout, id))
	case <-r.Context().Done():
		c.book.unwait(id, ch)
		c.m.gone.Inc()
		c.log.Debug().Str("activation", id).Str("fn", req.fn).Msg("client went away; the result will be kept for GET /activations")
		return nil
	case <-c.abort:
		c.book.unwait(id, ch)
		w.Header().Set("Connection", "close")
		w.Header().Set(HeaderOutcome, "unknown")
		return c.writeFailure(w, http.StatusServiceUnavailable, id, "",
			"controller is shutting down; fetch the result later with GET /activations/"+id)
	}
}

// failureStatus maps a result's reason to the client's status (the
// contract's ReasonStatus); a result with an unknown reason keeps its own
// error status, else 502.
func failureStatus(res *topics.Result) int {
	if status, ok := topics.ReasonStatus(res.Reason); ok {
		return status
	}
	if res.Status >= 400 {
		return res.Status
	}
	return http.StatusBadGateway
}

// writeResult answers with a result: the worker's status and body, or a JSON
// error when the result reports a failure.
func (c *Controller) writeResult(w http.ResponseWriter, res *topics.Result) error {
	h := w.Header()
	// The values share one array: Header.Set allocates one per header. The
	// names are in canonical form, as Set would make them.
	vals := make([]string, 0, 5)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderActivationID, res.ID)
	if res.Worker != "" {
		set(HeaderWorker, res.Worker)
	}
	switch res.Start {
	case topics.StartCold:
		set(HeaderColdStart, "1")
	case topics.StartWarm:
		set(HeaderColdStart, "0")
	}
	if res.Reason != "" {
		msg := res.Error
		if msg == "" {
			msg = res.Reason
		}
		return c.writeFailure(w, failureStatus(res), res.ID, res.Reason, msg)
	}
	body, err := res.BodyBytes()
	if err != nil {
		return c.writeFailure(w, http.StatusBadGateway, res.ID, topics.ReasonWorkerFailed, "unreadable result body: "+err.Error())
	}
	ct := res.ContentType
	if ct == "" {
		ct = "application/json"
	}
	set("Content-Type", ct)
	set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(res.Status)
	_, _ = w.Write(body)
	return nil
}

// writeFailure answers with a JSON error about an activation; a 429, and a
// 503 because no worker was in rotation (under overload, workers whose
// heartbeats the scheduler read late), carry Retry-After. Without an
// activation (a request refused before one was made) X-Activation-Id is
// left out rather than sent empty.
func (c *Controller) writeFailure(w http.ResponseWriter, status int, id, reason, msg string) error {
	if id != "" {
		w.Header().Set(HeaderActivationID, id)
	}
	if status == http.StatusTooManyRequests || reason == topics.ReasonNoWorkers {
		secs := int(math.Ceil(c.cfg.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	httpserve.WriteJSON(w, status, errorBody{Error: msg, Reason: reason, ActivationID: id})
	return nil
}

// activationView is the JSON of GET /activations/<id> once the result came.
type activationView struct {
	ActivationID string          `json:"activation_id"`
	Function     string          `json:"fn,omitempty"`
	Status       int             `json:"status"`
	Worker       string          `json:"worker,omitempty"`
	Start        topics.Start    `json:"start,omitempty"`
	DurationMs   float64         `json:"duration_ms"`
	ContentType  string          `json:"content_type,omitempty"`
	BodyEncoding string          `json:"body_encoding,omitempty"`
	Body         json.RawMessage `json:"body,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	Error        string          `json:"error,omitempty"`
}

// handleActivation serves GET /activations/<id>: 200 with the result, 202
// while pending, 404 when unknown or expired — or when its blocking request
// (without an Idempotency-Key) was answered with it: such results are not
// kept.
func (c *Controller) handleActivation(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	res, known := c.book.lookup(id, time.Now())
	if !known {
		return httpserve.Errorf(http.StatusNotFound, "activation %q unknown or expired (or its blocking request was answered without an Idempotency-Key: such results are not kept)", id)
	}
	if res == nil {
		httpserve.WriteJSON(w, http.StatusAccepted, map[string]string{"activation_id": id, "status": "pending"})
		return nil
	}
	httpserve.WriteJSON(w, http.StatusOK, activationView{
		ActivationID: res.ID, Function: res.Function, Status: res.Status, Worker: res.Worker, Start: res.Start,
		DurationMs: res.DurationMs, ContentType: res.ContentType, BodyEncoding: res.BodyEncoding, Body: res.Body,
		Reason: res.Reason, Error: res.Error,
	})
	return nil
}

// errTooLarge means an event's record is over the producer's record limit.
var errTooLarge = errors.New("record too large")

// publish sends ev to topic and waits for the broker's acknowledgement for
// at most limit (or until ctx ends). An idempotent producer cannot take back
// a record it may have sent, so waiting longer would not bound the request:
// uncertain reports that the wait ended before the outcome was known, and the
// record may still be delivered.
func (c *Controller) publish(ctx context.Context, limit time.Duration, topic string, ev topics.Event) (err error, uncertain bool) {
	prod := c.prod.Load()
	if prod == nil {
		return errors.New("controller not started"), false
	}
	rec, err := producer.Record(topic, ev)
	if err != nil {
		return err, false
	}
	tracing.Inject(ctx, rec) // before the size check: the headers count
	if !prod.Fits(rec) {
		return fmt.Errorf("%w: %s of %d bytes, over the limit of %d", errTooLarge, ev.Kind(), producer.BatchBytes(rec), prod.MaxRecordBytes()), false
	}
	pctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan error, 1) // the producer calls back once, even after we stop waiting
	prod.ProduceAsync(pctx, rec, func(err error) { done <- err })
	select {
	case err := <-done:
		return err, false
	case <-pctx.Done():
		select {
		case err := <-done:
			return err, false
		default:
		}
		return fmt.Errorf("publish %s to %s: %w", ev.Kind(), topic, pctx.Err()), true
	}
}
