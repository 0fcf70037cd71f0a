package owbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrMessage is wrapped by every error decoding an OpenWhisk message.
var ErrMessage = errors.New("openwhisk message")

func msgErr(kind, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMessage, kind, fmt.Sprintf(format, args...))
}

// ActivationIDLen is the length of an OpenWhisk activation id: 32
// lower-case hexadecimal digits (a UUID without its dashes).
const ActivationIDLen = 32

// ValidActivationID reports whether id is an activation id as OpenWhisk
// parses it: exactly 32 characters of 0-9 and a-f.
func ValidActivationID(id string) bool {
	if len(id) != ActivationIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// TransactionID is OpenWhisk's transaction id as it travels: a JSON array
// [id, start epoch-ms] followed by true when extra logging is on and then by
// the parent's array, if any.
type TransactionID struct {
	ID           string
	Start        int64 // epoch milliseconds
	ExtraLogging bool
	Parent       *TransactionID
}

// MarshalJSON writes the array form.
func (t TransactionID) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	id, _ := json.Marshal(t.ID)
	b.Write(id)
	b.WriteByte(',')
	b.WriteString(strconv.FormatInt(t.Start, 10))
	if t.ExtraLogging {
		b.WriteString(",true")
	}
	if t.Parent != nil {
		p, err := t.Parent.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b.WriteByte(',')
		b.Write(p)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the array forms OpenWhisk reads.
func (t *TransactionID) UnmarshalJSON(data []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return msgErr("transid", "not an array: %v", err)
	}
	if len(parts) < 2 || len(parts) > 4 {
		return msgErr("transid", "%d elements, want 2 to 4", len(parts))
	}
	*t = TransactionID{}
	if err := json.Unmarshal(parts[0], &t.ID); err != nil {
		return msgErr("transid", "id is not a string")
	}
	var start json.Number
	if err := json.Unmarshal(parts[1], &start); err != nil {
		return msgErr("transid", "start is not a number")
	}
	ms, err := start.Int64()
	if err != nil {
		f, ferr := start.Float64()
		if ferr != nil {
			return msgErr("transid", "start %q is not a time", start)
		}
		ms = int64(f)
	}
	t.Start = ms
	rest := parts[2:]
	if len(rest) > 0 && (string(rest[0]) == "true" || string(rest[0]) == "false") {
		t.ExtraLogging = string(rest[0]) == "true"
		rest = rest[1:]
	}
	if len(rest) == 1 {
		t.Parent = new(TransactionID)
		if err := t.Parent.UnmarshalJSON(rest[0]); err != nil {
			return err
		}
	} else if len(rest) > 1 {
		return msgErr("transid", "too many elements")
	}
	return nil
}

// ByteSize is a size in bytes, written as OpenWhisk writes a ByteSize of
// unit B: "<n> B".
type ByteSize int64

// Units OpenWhisk accepts in a size.
const (
	KB ByteSize = 1024
	MB          = 1024 * KB
	GB          = 1024 * MB
)

// MB is the size in whole megabytes, rounded down.
func (s ByteSize) MB() int64 { return int64(s / MB) }

// String is "<n> B".
func (s ByteSize) String() string { return strconv.FormatInt(int64(s), 10) + " B" }

var sizePattern = regexp.MustCompile(`^(?i)\s?(\d+)\s?(GB|MB|KB|B|G|M|K)\s?$`)

// ParseByteSize reads a size as OpenWhisk's ByteSize.fromString does:
// a number and a unit of B, K[B], M[B] or G[B], any case.
func ParseByteSize(s string) (ByteSize, error) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, msgErr("size", "%q: want <n> B, KB, MB or GB", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, msgErr("size", "%q: %v", s, err)
	}
	unit := map[byte]ByteSize{'B': 1, 'K': KB, 'M': MB, 'G': GB}[strings.ToUpper(m[2])[0]]
	if n > int64(^uint64(0)>>1)/int64(unit) {
		return 0, msgErr("size", "%q overflows", s)
	}
	return ByteSize(n) * unit, nil
}

// MarshalJSON writes the size as a JSON string "<n> B".
func (s ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads any unit OpenWhisk accepts.
func (s *ByteSize) UnmarshalJSON(data []byte) error {
	var str string
	if err := json.Unmarshal(data, &str); err != nil {
		return msgErr("size", "not a string")
	}
	v, err := ParseByteSize(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// InvokerInstanceID is an invoker's InstanceId. Tags and
// DedicatedNamespaces exist from 2.0 on: nil omits them (the 1.0 shape),
// non-nil writes them, empty or not (the 2.0 shape, which a 2.0 controller
// requires and a 1.0 controller ignores).
type InvokerInstanceID struct {
	Instance            int       `json:"instance"`
	UserMemory          ByteSize  `json:"userMemory"`
	BusyMemory          *ByteSize `json:"busyMemory,omitempty"`
	InstanceType        string    `json:"instanceType"`
	Tags                []string  `json:"tags"`
	DedicatedNamespaces []string  `json:"dedicatedNamespaces"`
	UniqueName          *string   `json:"uniqueName,omitempty"`
	DisplayedName       *string   `json:"displayedName,omitempty"`
}

// InstanceTypeInvoker and InstanceTypeController are the instanceType
// values of the two kinds of instance id.
const (
	InstanceTypeInvoker    = "invoker"
	InstanceTypeController = "controller"
)

// Topic is the invoker's own topic name, invoker<N>, before any prefix.
func (i InvokerInstanceID) Topic() string { return "invoker" + strconv.Itoa(i.Instance) }

// MarshalJSON writes OpenWhisk's member order; Tags and
// DedicatedNamespaces only when non-nil.
func (i InvokerInstanceID) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"instance":`)
	b.WriteString(strconv.Itoa(i.Instance))
	b.WriteString(`,"userMemory":`)
	um, _ := i.UserMemory.MarshalJSON()
	b.Write(um)
	if i.BusyMemory != nil {
		bm, _ := i.BusyMemory.MarshalJSON()
		b.WriteString(`,"busyMemory":`)
		b.Write(bm)
	}
	typ := i.InstanceType
	if typ == "" {
		typ = InstanceTypeInvoker
	}
	fmt.Fprintf(&b, `,"instanceType":%q`, typ)
	for _, f := range []struct {
		name string
		v    []string
	}{{"tags", i.Tags}, {"dedicatedNamespaces", i.DedicatedNamespaces}} {
		if f.v == nil {
			continue
		}
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"` + f.name + `":`)
		b.Write(v)
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"uniqueName", i.UniqueName}, {"displayedName", i.DisplayedName}} {
		if f.v == nil {
			continue
		}
		v, err := json.Marshal(*f.v)
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"` + f.name + `":`)
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads both shapes and checks the instance type.
func (i *InvokerInstanceID) UnmarshalJSON(data []byte) error {
	type plain InvokerInstanceID
	var p plain
	var probe struct {
		Instance   *int            `json:"instance"`
		UserMemory json.RawMessage `json:"userMemory"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return msgErr("instance", "%v", err)
	}
	if probe.Instance == nil || probe.UserMemory == nil {
		return msgErr("instance", "instance and userMemory are required")
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return msgErr("instance", "%v", err)
	}
	if p.InstanceType != InstanceTypeInvoker {
		return msgErr("instance", "instanceType %q, want invoker", p.InstanceType)
	}
	if p.Instance < 0 {
		return msgErr("instance", "negative instance %d", p.Instance)
	}
	*i = InvokerInstanceID(p)
	return nil
}

// ControllerInstanceID is a controller's InstanceId.
type ControllerInstanceID struct {
	AsString     string `json:"asString"`
	InstanceType string `json:"instanceType,omitempty"`
}

// FullyQualifiedEntityName names an action: its path (namespace and
// package), name, version and, for an action of a package binding, the
// binding's path.
type FullyQualifiedEntityName struct {
	Path    string  `json:"path"`
	Name    string  `json:"name"`
	Version string  `json:"version,omitempty"`
	Binding *string `json:"binding,omitempty"`
}

// String is path/name, the form OpenWhisk hashes for placement
// (fullyQualifiedName without the version).
func (f FullyQualifiedEntityName) String() string { return f.Path + "/" + f.Name }

// UnmarshalJSON accepts the object and OpenWhisk's alternative string form
// "namespace/[package/]name".
func (f *FullyQualifiedEntityName) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return msgErr("action", "%v", err)
		}
		s = strings.TrimPrefix(s, "/")
		i := strings.LastIndexByte(s, '/')
		if i <= 0 || i == len(s)-1 {
			return msgErr("action", "%q is not namespace/[package/]name", s)
		}
		*f = FullyQualifiedEntityName{Path: s[:i], Name: s[i+1:]}
		return nil
	}
	type plain FullyQualifiedEntityName
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return msgErr("action", "%v", err)
	}
	if p.Path == "" || p.Name == "" {
		return msgErr("action", "path and name are required")
	}
	*f = FullyQualifiedEntityName(p)
	return nil
}

// Namespace is an Identity's namespace.
type Namespace struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// Identity is the user an activation runs for. Only the members the
// bridge reads are typed; the others are kept as they came.
type Identity struct {
	Subject   string          `json:"subject"`
	Namespace Namespace       `json:"namespace"`
	AuthKey   json.RawMessage `json:"authkey,omitempty"`
	Rights    json.RawMessage `json:"rights,omitempty"`
	Limits    json.RawMessage `json:"limits,omitempty"`
}

// ActivationMessage is what a controller sends an invoker to run an
// action (connector.ActivationMessage). Members the bridge does not need
// are kept raw; the bridge never re-encodes a message it forwards, so its
// own encoder is for fixtures and tests.
type ActivationMessage struct {
	TransID             TransactionID            `json:"transid"`
	Action              FullyQualifiedEntityName `json:"action"`
	Revision            json.RawMessage          `json:"revision,omitempty"`
	User                Identity                 `json:"user"`
	ActivationID        string                   `json:"activationId"`
	RootControllerIndex ControllerInstanceID     `json:"rootControllerIndex"`
	Blocking            bool                     `json:"blocking"`
	Content             json.RawMessage          `json:"content,omitempty"`
	InitArgs            []string                 `json:"initArgs"`
	LockedArgs          map[string]string        `json:"lockedArgs"`
	Cause               *string                  `json:"cause,omitempty"`
	TraceContext        map[string]string        `json:"traceContext,omitempty"`
}

// DecodeActivation reads an ActivationMessage and checks the members the
// bridge relies on.
func DecodeActivation(b []byte) (*ActivationMessage, error) {
	var probe struct {
		TransID  json.RawMessage `json:"transid"`
		Blocking *bool           `json:"blocking"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, msgErr("activation", "%v", err)
	}
	if probe.TransID == nil || probe.Blocking == nil {
		return nil, msgErr("activation", "transid and blocking are required")
	}
	m := new(ActivationMessage)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, msgErr("activation", "%v", err)
	}
	if !ValidActivationID(m.ActivationID) {
		return nil, msgErr("activation", "activationId %q is not 32 lower-case hex digits", m.ActivationID)
	}
	if m.User.Namespace.Name == "" {
		return nil, msgErr("activation", "user.namespace.name is required")
	}
	if m.RootControllerIndex.AsString == "" {
		return nil, msgErr("activation", "rootControllerIndex.asString is required")
	}
	return m, nil
}

// Encode writes m in OpenWhisk's member order (for fixtures and tests:
// the bridge forwards the bytes it read).
func (m *ActivationMessage) Encode() ([]byte, error) {
	c := *m
	if c.InitArgs == nil {
		c.InitArgs = []string{}
	}
	if c.LockedArgs == nil {
		c.LockedArgs = map[string]string{}
	}
	return json.Marshal(&c)
}

// ActivationResponse is the response of a WhiskActivation.
type ActivationResponse struct {
	StatusCode int             `json:"statusCode"`
	Result     json.RawMessage `json:"result,omitempty"`
	Size       *int            `json:"size,omitempty"`
}

// Activation status codes (ActivationResponse).
const (
	StatusSuccess          = 0 // ran and succeeded
	StatusApplicationError = 1 // ran and returned an error it handled
	StatusDeveloperError   = 2 // failed to handle an error, or failed to initialise: the container is destroyed
	StatusWhiskError       = 3 // internal system error: the container is destroyed
)

// Annotation is one key/value member of an activation's annotations.
type Annotation struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// WhiskActivation is the activation record an acknowledgement may carry.
// Times are epoch milliseconds.
type WhiskActivation struct {
	Namespace    string             `json:"namespace"`
	Name         string             `json:"name"`
	Subject      string             `json:"subject"`
	ActivationID string             `json:"activationId"`
	Start        int64              `json:"start"`
	End          int64              `json:"end"`
	Cause        *string            `json:"cause,omitempty"`
	Response     ActivationResponse `json:"response"`
	Logs         json.RawMessage    `json:"logs"`
	Version      string             `json:"version"`
	Publish      bool               `json:"publish"`
	Annotations  []Annotation       `json:"annotations"`
	Duration     *int64             `json:"duration,omitempty"`
}

// Annotation returns the raw value of annotation key, or nil.
func (a *WhiskActivation) Annotation(key string) json.RawMessage {
	for _, an := range a.Annotations {
		if an.Key == key {
			return an.Value
		}
	}
	return nil
}

// InitTimeMs is the initTime annotation (present on cold starts), or -1.
func (a *WhiskActivation) InitTimeMs() int64 {
	v := a.Annotation("initTime")
	if v == nil {
		return -1
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return -1
	}
	f, err := n.Float64()
	if err != nil {
		return -1
	}
	return int64(f)
}

// Limits are the members of the limits annotation the bridge learns
// from: memory in MB and timeout in ms; 0 when absent.
type Limits struct {
	Memory  int   `json:"memory"`
	Timeout int64 `json:"timeout"`
}

// Limits reads the limits annotation.
func (a *WhiskActivation) Limits() (Limits, bool) {
	v := a.Annotation("limits")
	var l Limits
	if v == nil || json.Unmarshal(v, &l) != nil {
		return Limits{}, false
	}
	return l, true
}

// AckKind is which acknowledgement a message is.
type AckKind string

// The acknowledgement kinds (AcknowledgementMessage.messageType).
const (
	AckCombined   AckKind = "combined"   // slot free and result: CombinedCompletionAndResultMessage
	AckCompletion AckKind = "completion" // slot free: CompletionMessage
	AckResult     AckKind = "result"     // result only: ResultMessage
)

// Ack is an acknowledgement an invoker writes to completed<C>. Exactly one
// of Activation and ResponseID is set for combined and result acks (the
// record, or its id when the record was shrunk); ActivationID is set for
// all.
type Ack struct {
	Kind          AckKind
	TransID       TransactionID
	ActivationID  string
	Activation    *WhiskActivation // response as a record
	ResponseID    string           // response shrunk to the id
	IsSystemError *bool
	Instance      *InvokerInstanceID // combined and completion
	// InstanceField is the member the instance was read from: "instance",
	// or "invoker" in messages written before 1.0.
	InstanceField string
}

// SlotFree reports whether the ack frees the invoker's slot (combined
// and completion acks).
func (a *Ack) SlotFree() bool { return a.Kind != AckResult }

// SystemError is the ack's isSystemError, or what the record says when
// the member is absent.
func (a *Ack) SystemError() bool {
	if a.IsSystemError != nil {
		return *a.IsSystemError
	}
	return a.Activation != nil && a.Activation.Response.StatusCode == StatusWhiskError
}

// DecodeAck reads any acknowledgement: one with an instance and a response
// is combined, one with an instance only a completion, any other a result.
// The instance is read from "instance", or from "invoker" as messages
// older than 1.0 named it.
func DecodeAck(b []byte) (*Ack, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, msgErr("ack", "%v", err)
	}
	a := &Ack{}
	inst, field := raw["instance"], "instance"
	if inst == nil {
		if v, ok := raw["invoker"]; ok && len(v) > 0 && v[0] == '{' {
			inst, field = v, "invoker"
		}
	}
	resp := raw["response"]
	switch {
	case inst != nil && resp != nil:
		a.Kind = AckCombined
	case inst != nil:
		a.Kind = AckCompletion
	default:
		a.Kind = AckResult
	}
	tid, ok := raw["transid"]
	if !ok {
		return nil, msgErr("ack", "transid is required")
	}
	if err := json.Unmarshal(tid, &a.TransID); err != nil {
		return nil, err
	}
	if inst != nil {
		a.Instance = new(InvokerInstanceID)
		if err := json.Unmarshal(inst, a.Instance); err != nil {
			return nil, err
		}
		a.InstanceField = field
	}
	if v, ok := raw["isSystemError"]; ok && string(v) != "null" {
		var se bool
		if err := json.Unmarshal(v, &se); err != nil {
			return nil, msgErr("ack", "isSystemError is not a boolean")
		}
		a.IsSystemError = &se
	}
	switch a.Kind {
	case AckCompletion:
		id, ok := raw["activationId"]
		if !ok || json.Unmarshal(id, &a.ActivationID) != nil {
			return nil, msgErr("ack", "completion without an activationId string")
		}
	default:
		if resp == nil {
			return nil, msgErr("ack", "no response and no instance")
		}
		switch {
		case len(resp) > 0 && resp[0] == '"':
			if err := json.Unmarshal(resp, &a.ResponseID); err != nil {
				return nil, msgErr("ack", "%v", err)
			}
			a.ActivationID = a.ResponseID
		case len(resp) > 0 && resp[0] == '{':
			a.Activation = new(WhiskActivation)
			if err := json.Unmarshal(resp, a.Activation); err != nil {
				return nil, msgErr("ack", "response: %v", err)
			}
			a.ActivationID = a.Activation.ActivationID
		default:
			return nil, msgErr("ack", "response is neither an id nor an activation")
		}
	}
	if !ValidActivationID(a.ActivationID) {
		return nil, msgErr("ack", "activation id %q is not 32 lower-case hex digits", a.ActivationID)
	}
	return a, nil
}

// Encode writes a in OpenWhisk's member order: transid, then response or
// activationId, then isSystemError and instance as each kind has them.
func (a *Ack) Encode() ([]byte, error) {
	var b bytes.Buffer
	tid, err := a.TransID.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b.WriteString(`{"transid":`)
	b.Write(tid)
	switch a.Kind {
	case AckCompletion:
		id, _ := json.Marshal(a.ActivationID)
		b.WriteString(`,"activationId":`)
		b.Write(id)
	case AckCombined, AckResult:
		var resp []byte
		if a.Activation != nil {
			resp, err = json.Marshal(a.Activation)
		} else {
			resp, err = json.Marshal(a.ResponseID)
		}
		if err != nil {
			return nil, err
		}
		b.WriteString(`,"response":`)
		b.Write(resp)
	default:
		return nil, msgErr("ack", "unknown kind %q", a.Kind)
	}
	if a.Kind != AckResult {
		if a.IsSystemError != nil {
			fmt.Fprintf(&b, `,"isSystemError":%t`, *a.IsSystemError)
		}
		if a.Instance == nil {
			return nil, msgErr("ack", "%s ack without an instance", a.Kind)
		}
		inst, err := a.Instance.MarshalJSON()
		if err != nil {
			return nil, err
		}
		field := a.InstanceField
		if field == "" {
			field = "instance"
		}
		b.WriteString(`,"` + field + `":`)
		b.Write(inst)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// PingMessage is an invoker's heartbeat on health: {"name": instance} in
// 1.0, plus "isEnabled" in 2.0 (absent means enabled).
type PingMessage struct {
	Name      InvokerInstanceID `json:"name"`
	IsEnabled *bool             `json:"isEnabled,omitempty"`
}

// Enabled reports whether the invoker takes work.
func (p *PingMessage) Enabled() bool { return p.IsEnabled == nil || *p.IsEnabled }

// DecodePing reads a ping of either version.
func DecodePing(b []byte) (*PingMessage, error) {
	var raw struct {
		Name      json.RawMessage `json:"name"`
		IsEnabled *bool           `json:"isEnabled"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, msgErr("ping", "%v", err)
	}
	if raw.Name == nil {
		return nil, msgErr("ping", "name is required")
	}
	p := &PingMessage{IsEnabled: raw.IsEnabled}
	if err := json.Unmarshal(raw.Name, &p.Name); err != nil {
		return nil, err
	}
	return p, nil
}

// Encode writes the ping; the 1.0 shape when IsEnabled is nil and the
// instance has no 2.0 members.
func (p *PingMessage) Encode() ([]byte, error) { return json.Marshal(p) }
