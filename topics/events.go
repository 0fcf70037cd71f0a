package topics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Version is the wire version every event carries in its v field.
const Version = 1

// Kind names an event type; it travels in the type field.
type Kind string

// The event kinds.
const (
	KindArrival    Kind = "arrival"
	KindAssignment Kind = "assignment"
	KindCompletion Kind = "completion"
	KindEviction   Kind = "eviction"
	KindResult     Kind = "result"
	KindWorker     Kind = "worker"
)

// Event is implemented by every event type.
type Event interface {
	// Kind is the event's type.
	Kind() Kind
	// Validate checks required fields and values.
	Validate() error
}

// Start says whether an execution started a new sandbox.
type Start string

// Start values.
const (
	StartUnknown Start = ""
	StartCold    Start = "cold"
	StartWarm    Start = "warm"
)

// Arrival is a request to run a function, produced by the ingress or by any
// pipeline onto the arrivals topic, keyed by function.
type Arrival struct {
	ID       string          `json:"id"`                  // activation id, a UUID; follows the request to its result
	Function string          `json:"fn"`                  // function name
	Payload  json.RawMessage `json:"payload,omitempty"`   // request body, raw JSON, never re-encoded; empty means {}
	Reply    string          `json:"reply,omitempty"`     // controller id whose results topic gets the answer; empty: fire and forget
	Class    int             `json:"class,omitempty"`     // priority class, higher first
	MemoryMB int             `json:"memory_mb,omitempty"` // memory hint
	Arrived  time.Time       `json:"arrived,omitzero"`    // when the ingress accepted it
	Deadline time.Time       `json:"deadline,omitzero"`   // when the caller stops waiting; zero: the scheduler's default
}

// Assignment is the scheduler's decision, produced onto invoker.<worker>,
// keyed by activation id.
type Assignment struct {
	ID        string          `json:"id"`
	Function  string          `json:"fn"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Reply     string          `json:"reply,omitempty"`
	Worker    string          `json:"worker"`
	WorkerURL string          `json:"worker_url,omitempty"` // where the worker's OpenLambda API answers, for pool bridges
	Class     int             `json:"class,omitempty"`
	Warm      bool            `json:"warm,omitempty"` // the policy expects a warm sandbox (pulled from the idle queue)
	Arrived   time.Time       `json:"arrived,omitzero"`
	Assigned  time.Time       `json:"assigned,omitzero"`
	Deadline  time.Time       `json:"deadline,omitzero"` // the bridge gives up calling the worker then
	Scheduler string          `json:"scheduler,omitempty"`
}

// Completion reports that a worker finished (or failed) an assignment; it is
// produced onto worker-events, keyed by function.
type Completion struct {
	ID         string    `json:"id"`
	Function   string    `json:"fn"`
	Worker     string    `json:"worker"`
	OK         bool      `json:"ok"`               // the worker ran it and answered 2xx
	Status     int       `json:"status,omitempty"` // HTTP status of the worker's answer; 0 when none came
	Start      Start     `json:"start,omitempty"`  // cold, warm, or unknown (empty)
	WarmHint   bool      `json:"warm_hint,omitempty"`
	DurationMs float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at,omitzero"`
}

// Eviction reports that a worker destroyed an idle sandbox of a function;
// produced onto worker-events, keyed by function.
type Eviction struct {
	Function string    `json:"fn"`
	Worker   string    `json:"worker"`
	At       time.Time `json:"at,omitzero"`
}

// Body encodings of a Result.
const (
	BodyJSON   = ""       // Body is the worker's bytes, which were valid JSON
	BodyText   = "text"   // Body is a JSON string holding the worker's UTF-8 text
	BodyBase64 = "base64" // Body is a JSON string holding base64 of the worker's bytes
)

// Result answers one activation; produced onto results.<controller>, keyed
// by activation id, by the invokerbridge (worker answers) or the scheduler
// (rejections, timeouts).
type Result struct {
	ID           string          `json:"id"`
	Function     string          `json:"fn,omitempty"`
	Status       int             `json:"status"` // HTTP status for the client
	Body         json.RawMessage `json:"body,omitempty"`
	BodyEncoding string          `json:"body_encoding,omitempty"`
	ContentType  string          `json:"content_type,omitempty"`
	Worker       string          `json:"worker,omitempty"`
	Start        Start           `json:"start,omitempty"`
	DurationMs   float64         `json:"duration_ms,omitempty"`
	Reason       string          `json:"reason,omitempty"` // machine-readable cause of a failure: see the Reason constants
	Error        string          `json:"error,omitempty"`  // human-readable cause of a failure
	Source       string          `json:"source,omitempty"` // "worker" or "scheduler"
	At           time.Time       `json:"at,omitzero"`
}

// Worker states on the workers topic.
const (
	WorkerActive   = "active"
	WorkerDraining = "draining"
	WorkerRemoved  = "removed"
)

// Worker sources: who registered the worker.
const (
	SourceSidecar = "sidecar" // its own invokerbridge registered it
	SourceAdmin   = "admin"   // an operator added it through the admin API
	// SourceOpenWhisk: an OpenWhisk invoker, heartbeated by the OpenWhisk
	// bridge (owbridge) from its pings.
	SourceOpenWhisk = "openwhisk"
)

// Worker is membership and heartbeat of one worker, produced onto the
// compacted workers topic keyed by worker id.
type Worker struct {
	ID       string `json:"id"`
	URL      string `json:"url,omitempty"` // the worker's OpenLambda API base URL
	State    string `json:"state"`         // active, draining, removed
	Source   string `json:"source,omitempty"`
	Capacity int    `json:"capacity,omitempty"` // max in-flight, 0 = unlimited
	InFlight int    `json:"inflight"`
	// InFlightBy splits InFlight by the scheduler replica that placed the
	// calls (Assignment.Scheduler), so that a replica counts as external
	// load only what the others placed. Absent from bridges that predate
	// it; calls with no scheduler id are counted under "".
	InFlightBy map[string]int `json:"inflight_by,omitempty"`
	Healthy    bool           `json:"healthy"`
	Bridge     string         `json:"bridge,omitempty"` // id of the invokerbridge serving it, if any
	// Stopped is set on a bridge's last record for the worker: it has
	// left the worker's invoker group, every assignment it took is
	// answered, and the ones from the group's committed offset on were
	// never taken. Schedulers place those again if no bridge serves the
	// worker within a heartbeat timeout.
	Stopped bool      `json:"stopped,omitempty"`
	At      time.Time `json:"at,omitzero"` // when this record was written
}

// Kind implements Event.
func (*Arrival) Kind() Kind { return KindArrival }

// Kind implements Event.
func (*Assignment) Kind() Kind { return KindAssignment }

// Kind implements Event.
func (*Completion) Kind() Kind { return KindCompletion }

// Kind implements Event.
func (*Eviction) Kind() Kind { return KindEviction }

// Kind implements Event.
func (*Result) Kind() Kind { return KindResult }

// Kind implements Event.
func (*Worker) Kind() Kind { return KindWorker }

// NewID returns a fresh activation id.
func NewID() string { return uuid.NewString() }

func checkID(k Kind, id string) error {
	if id == "" {
		return missing(k, "id")
	}
	if !canonicalUUID(id) {
		return invalid(k, "id", "%q is not a lower-case canonical UUID", id)
	}
	return nil
}

// canonicalUUID reports whether id is a UUID in its lower-case canonical
// form, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: what uuid.Parse accepts and
// String gives back unchanged.
func canonicalUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func checkFn(k Kind, fn string) error {
	if fn == "" {
		return missing(k, "fn")
	}
	if !ValidFunction(fn) {
		return invalid(k, "fn", "%q: want 1-128 of letters, digits, '_', '.', '-'", fn)
	}
	return nil
}

func checkWorker(k Kind, field, id string) error {
	if id == "" {
		return missing(k, field)
	}
	if !ValidID(id) {
		return invalid(k, field, "%q: want 1-128 of letters, digits, '_', '.', '-'", id)
	}
	return nil
}

func checkPayload(k Kind, field string, p json.RawMessage) error {
	if len(p) > 0 && !json.Valid(p) {
		return invalid(k, field, "not valid JSON")
	}
	return nil
}

// Validate implements Event.
func (a *Arrival) Validate() error {
	if err := checkID(KindArrival, a.ID); err != nil {
		return err
	}
	if err := checkFn(KindArrival, a.Function); err != nil {
		return err
	}
	if a.Reply != "" && !ValidID(a.Reply) {
		return invalid(KindArrival, "reply", "%q is not a valid controller id", a.Reply)
	}
	if a.MemoryMB < 0 {
		return invalid(KindArrival, "memory_mb", "negative")
	}
	return checkPayload(KindArrival, "payload", a.Payload)
}

// Validate implements Event.
func (a *Assignment) Validate() error {
	if err := checkID(KindAssignment, a.ID); err != nil {
		return err
	}
	if err := checkFn(KindAssignment, a.Function); err != nil {
		return err
	}
	if err := checkWorker(KindAssignment, "worker", a.Worker); err != nil {
		return err
	}
	if a.Reply != "" && !ValidID(a.Reply) {
		return invalid(KindAssignment, "reply", "%q is not a valid controller id", a.Reply)
	}
	return checkPayload(KindAssignment, "payload", a.Payload)
}

func checkStart(k Kind, s Start) error {
	switch s {
	case StartUnknown, StartCold, StartWarm:
		return nil
	}
	return invalid(k, "start", "%q: want cold, warm or empty", s)
}

// Validate implements Event.
func (c *Completion) Validate() error {
	if err := checkID(KindCompletion, c.ID); err != nil {
		return err
	}
	if err := checkFn(KindCompletion, c.Function); err != nil {
		return err
	}
	if err := checkWorker(KindCompletion, "worker", c.Worker); err != nil {
		return err
	}
	if c.DurationMs < 0 {
		return invalid(KindCompletion, "duration_ms", "negative")
	}
	return checkStart(KindCompletion, c.Start)
}

// Validate implements Event.
func (e *Eviction) Validate() error {
	if err := checkFn(KindEviction, e.Function); err != nil {
		return err
	}
	return checkWorker(KindEviction, "worker", e.Worker)
}

// Validate implements Event.
func (r *Result) Validate() error {
	if err := checkID(KindResult, r.ID); err != nil {
		return err
	}
	if r.Status == 0 {
		return missing(KindResult, "status")
	}
	if r.Status < 100 || r.Status > 599 {
		return invalid(KindResult, "status", "%d is not an HTTP status", r.Status)
	}
	if r.Function != "" {
		if err := checkFn(KindResult, r.Function); err != nil {
			return err
		}
	}
	switch r.BodyEncoding {
	case BodyJSON, BodyText, BodyBase64:
	default:
		return invalid(KindResult, "body_encoding", "%q: want text, base64 or empty", r.BodyEncoding)
	}
	if err := checkPayload(KindResult, "body", r.Body); err != nil {
		return err
	}
	return checkStart(KindResult, r.Start)
}

// Validate implements Event.
func (w *Worker) Validate() error {
	if err := checkWorker(KindWorker, "id", w.ID); err != nil {
		return err
	}
	switch w.State {
	case WorkerActive, WorkerDraining, WorkerRemoved:
	case "":
		return missing(KindWorker, "state")
	default:
		return invalid(KindWorker, "state", "%q: want active, draining or removed", w.State)
	}
	if w.Capacity < 0 {
		return invalid(KindWorker, "capacity", "negative")
	}
	if w.InFlight < 0 {
		return invalid(KindWorker, "inflight", "negative")
	}
	for id, n := range w.InFlightBy {
		if n < 0 {
			return invalid(KindWorker, "inflight_by", "negative count for scheduler %q", id)
		}
	}
	return nil
}

// header is what every event starts with.
type header struct {
	V    *int `json:"v"`
	Type Kind `json:"type"`
}

// Encode validates ev and returns its wire form: a JSON object whose first
// fields are v and type. Raw payloads and bodies are copied byte for byte.
func Encode(ev Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.Kind(), err)
	}
	if n := encodedSize(ev); n > 0 {
		b, _, err := appendEvent(make([]byte, 0, n), ev)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", ev.Kind(), err)
		}
		return b, nil
	}
	// Types not written by hand (see codec.go) go through encoding/json.
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.Kind(), err)
	}
	b := appendHeader(make([]byte, 0, len(body)+40), ev.Kind())
	if len(body) > 2 {
		b = append(b, ',')
		b = append(b, body[1:len(body)-1]...)
	}
	return append(b, '}'), nil
}

// encodedSize is a guess at the size of ev's wire form, so that Encode
// allocates once for the usual events (ids, names and three times fit),
// and 0 for a type Encode leaves to encoding/json.
func encodedSize(ev Event) int {
	switch e := ev.(type) {
	case *Arrival:
		return 256 + len(e.Payload)
	case *Assignment:
		return 384 + len(e.Payload)
	case *Completion:
		return 256
	case *Eviction:
		return 128
	case *Result:
		return 320 + len(e.Body)
	}
	return 0
}

// Decode reads any event, dispatching on its type field.
func Decode(b []byte) (Event, error) {
	k, err := kindOf(b, "")
	if err != nil {
		return nil, err
	}
	var ev Event
	switch k {
	case KindArrival:
		ev = new(Arrival)
	case KindAssignment:
		ev = new(Assignment)
	case KindCompletion:
		ev = new(Completion)
	case KindEviction:
		ev = new(Eviction)
	case KindResult:
		ev = new(Result)
	case KindWorker:
		ev = new(Worker)
	default:
		return nil, &DecodeError{Field: "type", Err: ErrType, Msg: fmt.Sprintf("unknown type %q", k)}
	}
	if err := decodeBody(b, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// DecodeAs reads an event that must be of the kind of ev, into ev.
func DecodeAs(b []byte, ev Event) error {
	if _, err := kindOf(b, ev.Kind()); err != nil {
		return err
	}
	return decodeBody(b, ev)
}

// DecodeArrival reads an arrival.
func DecodeArrival(b []byte) (*Arrival, error) {
	a := new(Arrival)
	if err := DecodeAs(b, a); err != nil {
		return nil, err
	}
	return a, nil
}

// DecodeAssignment reads an assignment.
func DecodeAssignment(b []byte) (*Assignment, error) {
	a := new(Assignment)
	if err := DecodeAs(b, a); err != nil {
		return nil, err
	}
	return a, nil
}

// DecodeResult reads a result.
func DecodeResult(b []byte) (*Result, error) {
	r := new(Result)
	if err := DecodeAs(b, r); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeWorker reads a worker record.
func DecodeWorker(b []byte) (*Worker, error) {
	w := new(Worker)
	if err := DecodeAs(b, w); err != nil {
		return nil, err
	}
	return w, nil
}

// DecodeWorkerEvent reads a record of the worker-events topic: a *Completion
// or an *Eviction.
func DecodeWorkerEvent(b []byte) (Event, error) {
	k, err := kindOf(b, "")
	if err != nil {
		return nil, err
	}
	var ev Event
	switch k {
	case KindCompletion:
		ev = new(Completion)
	case KindEviction:
		ev = new(Eviction)
	default:
		return nil, &DecodeError{Field: "type", Err: ErrType, Msg: fmt.Sprintf("%q on worker-events: want completion or eviction", k)}
	}
	if err := decodeBody(b, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// encodedPrefix is how every event Encode writes begins.
const encodedPrefix = `{"v":1,"type":"`

var kinds = []Kind{KindArrival, KindAssignment, KindCompletion, KindEviction, KindResult, KindWorker}

// kindOf returns the type of the event in b (which must be want, when
// want is set). Records in the form Encode writes are recognised from their
// first bytes; anything else takes a parse of the header. Either way
// decodeBody checks the header again in its single full parse.
func kindOf(b []byte, want Kind) (Kind, error) {
	if rest, ok := bytes.CutPrefix(b, []byte(encodedPrefix)); ok {
		for _, k := range kinds {
			if len(rest) > len(k) && rest[len(k)] == '"' && string(rest[:len(k)]) == string(k) {
				if want != "" && k != want {
					return "", &DecodeError{Kind: want, Field: "type", Err: ErrType, Msg: fmt.Sprintf("got %q", k)}
				}
				return k, nil
			}
		}
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return "", &DecodeError{Kind: want, Err: ErrMalformed, Msg: err.Error()}
	}
	if err := h.check(want); err != nil {
		return "", err
	}
	return h.Type, nil
}

// check reports a header that is not version 1 of kind want (any kind
// when want is empty).
func (h header) check(want Kind) error {
	if h.V == nil {
		return &DecodeError{Kind: want, Field: "v", Err: ErrVersion, Msg: "absent"}
	}
	if *h.V != Version {
		return &DecodeError{Kind: want, Field: "v", Err: ErrVersion, Msg: fmt.Sprintf("got %d, speak %d", *h.V, Version)}
	}
	if h.Type == "" {
		return &DecodeError{Kind: want, Field: "type", Err: ErrType, Msg: "absent"}
	}
	if want != "" && h.Type != want {
		return &DecodeError{Kind: want, Field: "type", Err: ErrType, Msg: fmt.Sprintf("got %q", h.Type)}
	}
	return nil
}

// decodeBody parses b once into ev and its header, then checks both: the
// header must still be version 1 of ev's kind (a later duplicate key could
// have changed it) and ev must validate.
func decodeBody(b []byte, ev Event) error {
	var h header
	if !readEvent(b, ev, &h) { // the plain form, read by hand (codec.go)
		w, wh := wireOf(ev)
		if w == nil {
			return &DecodeError{Kind: ev.Kind(), Err: ErrType, Msg: fmt.Sprintf("%T is not an event type of this package", ev)}
		}
		if err := json.Unmarshal(b, w); err != nil {
			return &DecodeError{Kind: ev.Kind(), Err: ErrMalformed, Msg: err.Error()}
		}
		h = *wh
	}
	if err := h.check(ev.Kind()); err != nil {
		return err
	}
	return ev.Validate()
}

// wireOf returns ev's wire form for decoding — the header and ev's fields
// side by side in one object — and where its header lands; nil for a type
// that is not an event of this package.
func wireOf(ev Event) (any, *header) {
	switch e := ev.(type) {
	case *Arrival:
		w := &struct {
			header
			*Arrival
		}{Arrival: e}
		return w, &w.header
	case *Assignment:
		w := &struct {
			header
			*Assignment
		}{Assignment: e}
		return w, &w.header
	case *Completion:
		w := &struct {
			header
			*Completion
		}{Completion: e}
		return w, &w.header
	case *Eviction:
		w := &struct {
			header
			*Eviction
		}{Eviction: e}
		return w, &w.header
	case *Result:
		w := &struct {
			header
			*Result
		}{Result: e}
		return w, &w.header
	case *Worker:
		w := &struct {
			header
			*Worker
		}{Worker: e}
		return w, &w.header
	}
	return nil, nil
}
