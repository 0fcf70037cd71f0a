package topics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// encodeReflect is how Encode wrote events before codec.go, with
// encoding/json: the reference the hand-written appenders must match byte
// for byte.
func encodeReflect(ev Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	var raw json.RawMessage
	rawField := ""
	switch e := ev.(type) {
	case *Arrival:
		if len(e.Payload) > 0 {
			c := *e
			raw, rawField, c.Payload = e.Payload, "payload", nil
			ev = &c
		}
	case *Assignment:
		if len(e.Payload) > 0 {
			c := *e
			raw, rawField, c.Payload = e.Payload, "payload", nil
			ev = &c
		}
	case *Result:
		if len(e.Body) > 0 {
			c := *e
			raw, rawField, c.Body = e.Body, "body", nil
			ev = &c
		}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"v":%d,"type":%q`, Version, ev.Kind())
	if len(body) > 2 {
		b.WriteByte(',')
		b.Write(body[1 : len(body)-1])
	}
	if rawField != "" {
		b.WriteString(`,"` + rawField + `":`)
		b.Write(raw)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeReflect decodes b into ev with encoding/json only.
func decodeReflect(b []byte, ev Event) (header, error) {
	w, h := wireOf(ev)
	err := json.Unmarshal(b, w)
	return *h, err
}

// gen makes random events whose fields hit the appenders' fallbacks:
// strings that need escaping, odd floats and times.
type gen struct{ r *rand.Rand }

func (g gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g gen) str() string {
	switch g.r.IntN(6) {
	case 0:
		return ""
	case 1:
		return g.pick("a<b", "x&y", "q\"uote", `back\slash`, "tab\there", "nl\n", "\u2028", "é", "\xff\xfe", "\x7f", "日本", "\x00")
	}
	var sb strings.Builder
	for range g.r.IntN(12) {
		sb.WriteByte(byte(0x20 + g.r.IntN(0x60)))
	}
	return sb.String()
}

func (g gen) name() string {
	return g.pick("f", "linpack-2", "fn.with_dots-1", "w1", "ctl-1", "x")
}

func (g gen) int() int {
	switch g.r.IntN(4) {
	case 0:
		return 0
	case 1:
		return g.r.IntN(1000)
	case 2:
		return -g.r.IntN(1000)
	}
	return int(g.r.Int64())
}

func (g gen) float() float64 {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return g.r.Float64() * 1e-7
	case 2:
		return g.r.Float64() * 1e25
	case 3:
		return 1e21
	case 4:
		return 1e-6
	case 5:
		return math.Copysign(0, -1)
	}
	return g.r.Float64() * 1e4
}

func (g gen) time() time.Time {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("odd", 5*3600+30*60), time.FixedZone("secs", 3600+17),
		time.FixedZone("west", -11*3600)}
	switch g.r.IntN(6) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(10000+g.r.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC)
	case 2:
		return time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
	case 3:
		return time.Now() // with a monotonic reading
	}
	return time.Unix(g.r.Int64N(1<<35), g.r.Int64N(1e9)).In(zones[g.r.IntN(len(zones))])
}

func (g gen) raw() json.RawMessage {
	return json.RawMessage(g.pick("", "", "{}", `{"n": 100,  "s":"<b>&amp;"}`, "[1, 2]", `"s"`, "12", "true", "{\n \"a\" : [ {}, [] ]\n}", `{"e":"\u00e9\"x"}`))
}

func (g gen) start() Start { return Start(g.pick("", "cold", "warm")) }

func (g gen) event() Event {
	id := NewID()
	switch g.r.IntN(5) {
	case 0:
		return &Arrival{ID: id, Function: g.name(), Payload: g.raw(), Reply: g.pick("", "ctl-1"), Class: g.int(),
			MemoryMB: g.r.IntN(3) * 128, Arrived: g.time(), Deadline: g.time()}
	case 1:
		return &Assignment{ID: id, Function: g.name(), Payload: g.raw(), Reply: g.pick("", "ctl-1"), Worker: g.name(),
			WorkerURL: g.str(), Class: g.int(), Warm: g.r.IntN(2) == 0, Arrived: g.time(), Assigned: g.time(),
			Deadline: g.time(), Scheduler: g.str()}
	case 2:
		return &Completion{ID: id, Function: g.name(), Worker: g.name(), OK: g.r.IntN(2) == 0, Status: g.int(), Start: g.start(),
			WarmHint: g.r.IntN(2) == 0, DurationMs: math.Abs(g.float()), Error: g.str(), At: g.time()}
	case 3:
		return &Eviction{Function: g.name(), Worker: g.name(), At: g.time()}
	}
	return &Result{ID: id, Function: g.pick("", "f"), Status: 100 + g.r.IntN(500), Body: g.raw(), BodyEncoding: g.pick("", "text", "base64"),
		ContentType: g.str(), Worker: g.str(), Start: g.start(), DurationMs: g.float(), Reason: g.str(), Error: g.str(),
		Source: g.pick("", "worker", "scheduler"), At: g.time()}
}

// TestEncodeMatchesEncodingJSON: the appenders write what encoding/json
// wrote, byte for byte, and refuse what it refused.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	events := sampleEvents()
	for range 20000 {
		events = append(events, g.event())
	}
	events = append(events, &Completion{ID: testID, Function: "f", Worker: "w", DurationMs: math.NaN()},
		&Result{ID: testID, Status: 200, DurationMs: math.Inf(1)})
	for _, ev := range events {
		want, werr := encodeReflect(ev)
		got, err := Encode(ev)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%#v: error %v, encoding/json's %v", ev, err, werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%#v:\n got %s\nwant %s", ev, got, want)
		}
	}
}

// TestReadMatchesEncodingJSON: whatever the hand-written reader takes, it
// reads as encoding/json does; encoded events, reordered and spaced
// fields, and edits of them that it must decline all agree.
func TestReadMatchesEncodingJSON(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	read := 0
	for range 20000 {
		ev := g.event()
		b, err := Encode(ev)
		if err != nil {
			continue
		}
		inputs := [][]byte{b, spaced(b), reordered(b)}
		for j := range 3 {
			inputs = append(inputs, mutate(g.r, inputs[j]))
		}
		for _, in := range inputs {
			if checkRead(t, in, ev.Kind()) {
				read++
			}
		}
	}
	if read < 20000 {
		t.Fatalf("only %d of 120,000 inputs read by hand", read)
	}
	t.Logf("%d of 120,000 inputs read by hand", read)
	for _, ev := range sampleEvents() {
		b, _ := Encode(ev)
		if ev.Kind() != KindWorker && !checkRead(t, spaced(b), ev.Kind()) {
			t.Errorf("the plain form %s was not read by hand", spaced(b))
		}
	}
}

// checkRead compares the hand-written reader with encoding/json on b, for
// an event of kind k, and reports whether the reader took b.
func checkRead(t *testing.T, b []byte, k Kind) bool {
	t.Helper()
	fresh := func() Event {
		switch k {
		case KindArrival:
			return new(Arrival)
		case KindAssignment:
			return new(Assignment)
		case KindCompletion:
			return new(Completion)
		case KindEviction:
			return new(Eviction)
		}
		return new(Result)
	}
	fast, slow := fresh(), fresh()
	var fh header
	if !readEvent(b, fast, &fh) {
		if !reflect.DeepEqual(fast, fresh()) || fh.V != nil || fh.Type != "" {
			t.Fatalf("%s: declined, but changed the event: %#v", b, fast)
		}
		return false
	}
	sh, err := decodeReflect(b, slow)
	if err != nil {
		t.Fatalf("%s: read by hand, refused by encoding/json: %v", b, err)
	}
	if !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(fh, sh) {
		t.Fatalf("%s:\nby hand %#v %+v\n   json %#v %+v", b, fast, fh, slow, sh)
	}
	return true
}

// spaced puts JSON whitespace around every structural character outside
// strings.
func spaced(b []byte) []byte {
	var out []byte
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if in {
			out = append(out, c)
			if c == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if c == '"' {
				in = false
			}
			continue
		}
		switch c {
		case '"':
			in = true
			out = append(out, c)
		case '{', '}', '[', ']', ',', ':':
			out = append(out, " \n\t"...)
			out = append(out, c)
			out = append(out, '\r', ' ')
		default:
			out = append(out, c)
		}
	}
	return out
}

// reordered writes b's top-level fields in reverse order.
func reordered(b []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	out := []byte{'{'}
	for i := len(keys) - 1; i >= 0; i-- {
		if i < len(keys)-1 {
			out = append(out, ',')
		}
		kb, _ := json.Marshal(keys[i])
		out = append(out, kb...)
		out = append(out, ':')
		out = append(out, m[keys[i]]...)
	}
	return append(out, '}')
}

// mutate makes one edit that the reader must decline or read as
// encoding/json does.
func mutate(r *rand.Rand, b []byte) []byte {
	edits := []func([]byte) []byte{
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"id"`), []byte(`"ID"`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`{"v":1,`), []byte(`{"v":1,"v":1,`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"v":1`), []byte(`"v":1.0`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"v":1`), []byte(`"v":null`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"v":1,`), nil, 1) },
		func(b []byte) []byte { return append(b[:len(b):len(b)], " x"...) },
		func(b []byte) []byte { return append(b[:len(b):len(b)], " \n"...) },
		func(b []byte) []byte { return b[:len(b)-1] },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"fn":"`), []byte(`"fn":"\u0041`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"status":`), []byte(`"status":1e2,"x":`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"ok":`), []byte(`"ok":null,"y":`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"payload":`), []byte(`"payload":null,"z":`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"body":`), []byte(`"body":[1,}`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`:true`), []byte(`:tru`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"class":`), []byte(`"class":0`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"at":"`), []byte(`"at":"x`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"duration_ms":`), []byte(`"duration_ms":-`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"worker":"`), []byte("\"worker\":\"\xff"), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`"type":"`), []byte(`"type":"x`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`,`), []byte(`,,`), 1) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`{`), []byte(`[`), 1) },
	}
	return edits[r.IntN(len(edits))](b)
}

// FuzzRead: on any input, the hand-written reader declines or agrees with
// encoding/json.
func FuzzRead(f *testing.F) {
	for _, ev := range sampleEvents() {
		b, _ := Encode(ev)
		f.Add(b, uint8(0))
		f.Add(spaced(b), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, k uint8) {
		kinds := []Kind{KindArrival, KindAssignment, KindCompletion, KindEviction, KindResult}
		checkRead(t, b, kinds[int(k)%len(kinds)])
	})
}

// BenchmarkDecodeReflect is BenchmarkDecode with encoding/json alone,
// as events were read before codec.go.
func BenchmarkDecodeReflect(b *testing.B) {
	for _, ev := range sampleEvents() {
		enc, _ := Encode(ev)
		b.Run(string(ev.Kind()), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out := reflect.New(reflect.TypeOf(ev).Elem()).Interface().(Event)
				if _, err := decodeReflect(enc, out); err != nil {
					b.Fatal(err)
				}
				if err := out.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestNameCharsMatchesPattern: the loop that checks function names and
// ids agrees with the regular expression it replaced.
func TestNameCharsMatchesPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	r := rand.New(rand.NewPCG(5, 6))
	inputs := []string{"", "a", ".", "..", "a\n", "a b", strings.Repeat("x", 128), strings.Repeat("x", 129), "é", "f-1.2_x", "A/B", "\x00"}
	for range 100000 {
		b := make([]byte, r.IntN(131))
		for i := range b {
			if r.IntN(20) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = "abcXYZ019_.-"[r.IntN(12)]
			}
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		if got, want := ValidFunction(s), pattern.MatchString(s); got != want {
			t.Fatalf("ValidFunction(%q) = %v, the pattern says %v", s, got, want)
		}
		if got, want := ValidID(s), pattern.MatchString(s) && s != "." && s != ".."; got != want {
			t.Fatalf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestCanonicalUUIDMatchesParse: the id check agrees with what it
// replaced, uuid.Parse and a round trip through String.
func TestCanonicalUUIDMatchesParse(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	inputs := []string{"", testID, strings.ToUpper(testID), "{" + testID + "}", "urn:uuid:" + testID, strings.ReplaceAll(testID, "-", ""),
		testID[:35], testID + "0", strings.Replace(testID, "-", "x", 1), strings.Replace(testID, "0", "g", 1)}
	for range 100000 {
		b := []byte(NewID())
		for range r.IntN(3) {
			b[r.IntN(len(b))] = "0123456789abcdefABCDEF-gz{}:"[r.IntN(28)]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		u, err := uuid.Parse(s)
		want := err == nil && u.String() == s
		if got := canonicalUUID(s); got != want {
			t.Fatalf("canonicalUUID(%q) = %v, uuid.Parse says %v", s, got, want)
		}
	}
}
