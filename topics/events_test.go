package topics

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

const testID = "0b9e2f4e-7a1c-4d2b-9f5e-3c8a1d6b2e70"

func sampleEvents() []Event {
	at := time.Date(2026, 11, 23, 9, 0, 0, 123000000, time.UTC)
	return []Event{
		&Arrival{ID: testID, Function: "linpack-2", Payload: json.RawMessage(`{"n": 100,  "s":"<b>"}`), Reply: "ctl-1", Class: 2, Arrived: at, Deadline: at.Add(time.Minute)},
		&Assignment{ID: testID, Function: "linpack-2", Payload: json.RawMessage(`[1, 2]`), Worker: "w1", WorkerURL: "http://127.0.0.1:8081", Warm: true, Assigned: at, Scheduler: "s0"},
		&Completion{ID: testID, Function: "linpack-2", Worker: "w1", OK: true, Status: 200, Start: StartCold, WarmHint: true, DurationMs: 58.5, At: at},
		&Eviction{Function: "linpack-2", Worker: "w1", At: at},
		&Result{ID: testID, Function: "linpack-2", Status: 200, Body: json.RawMessage(`{"ok" : true}`), Worker: "w1", Start: StartWarm, DurationMs: 12, Source: "worker", At: at},
		&Worker{ID: "w1", URL: "http://127.0.0.1:8081", State: WorkerActive, Source: SourceSidecar, Capacity: 8, InFlight: 3, Healthy: true, At: at},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, ev := range sampleEvents() {
		t.Run(string(ev.Kind()), func(t *testing.T) {
			b, err := Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte(`{"v":1,"type":"`+string(ev.Kind())+`"`)) {
				t.Fatalf("header: %s", b)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, ev)
			}
			again := reflect.New(reflect.TypeOf(ev).Elem()).Interface().(Event)
			if err := DecodeAs(b, again); err != nil || !reflect.DeepEqual(again, ev) {
				t.Fatalf("DecodeAs: %v", err)
			}
		})
	}
}

func TestPayloadVerbatim(t *testing.T) {
	raw := `{"n": 100,  "s":"<b>&amp;"}`
	b, err := Encode(&Arrival{ID: testID, Function: "f", Payload: json.RawMessage(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(raw)) {
		t.Fatalf("payload re-encoded: %s", b)
	}
	a, err := DecodeArrival(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Payload) != raw {
		t.Fatalf("payload %q, want %q", a.Payload, raw)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		want  error
		field string
	}{
		{"not json", `nope`, ErrMalformed, ""},
		{"array", `[1]`, ErrMalformed, ""},
		{"no version", `{"type":"arrival","id":"` + testID + `","fn":"f"}`, ErrVersion, "v"},
		{"future version", `{"v":2,"type":"arrival","id":"` + testID + `","fn":"f"}`, ErrVersion, "v"},
		{"wrong type", `{"v":1,"type":"result","id":"` + testID + `","status":200}`, ErrType, "type"},
		{"no id", `{"v":1,"type":"arrival","fn":"f"}`, ErrMissing, "id"},
		{"bad id", `{"v":1,"type":"arrival","id":"123","fn":"f"}`, ErrInvalid, "id"},
		{"upper-case id", `{"v":1,"type":"arrival","id":"0B9E2F4E-7A1C-4D2B-9F5E-3C8A1D6B2E70","fn":"f"}`, ErrInvalid, "id"},
		{"no fn", `{"v":1,"type":"arrival","id":"` + testID + `"}`, ErrMissing, "fn"},
		{"bad fn", `{"v":1,"type":"arrival","id":"` + testID + `","fn":"a/b"}`, ErrInvalid, "fn"},
		{"bad reply", `{"v":1,"type":"arrival","id":"` + testID + `","fn":"f","reply":"x y"}`, ErrInvalid, "reply"},
		{"field of wrong type", `{"v":1,"type":"arrival","id":"` + testID + `","fn":"f","class":"high"}`, ErrMalformed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeArrival([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err %T is not a *DecodeError", err)
			}
			if de.Field != c.field {
				t.Fatalf("field = %q, want %q", de.Field, c.field)
			}
		})
	}
}

func TestValidateOtherKinds(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
		want error
	}{
		{"assignment without worker", &Assignment{ID: testID, Function: "f"}, ErrMissing},
		{"completion bad start", &Completion{ID: testID, Function: "f", Worker: "w", Start: "hot"}, ErrInvalid},
		{"completion negative duration", &Completion{ID: testID, Function: "f", Worker: "w", DurationMs: -1}, ErrInvalid},
		{"eviction without worker", &Eviction{Function: "f"}, ErrMissing},
		{"result without status", &Result{ID: testID}, ErrMissing},
		{"result bad status", &Result{ID: testID, Status: 42}, ErrInvalid},
		{"result bad body", &Result{ID: testID, Status: 200, Body: json.RawMessage(`{`)}, ErrInvalid},
		{"worker without state", &Worker{ID: "w"}, ErrMissing},
		{"worker bad state", &Worker{ID: "w", State: "sleepy"}, ErrInvalid},
		{"worker bad id", &Worker{ID: "a b", State: WorkerActive}, ErrInvalid},
		{"worker negative inflight_by", &Worker{ID: "w", State: WorkerActive, InFlightBy: map[string]int{"s1": -1}}, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Encode(c.ev); !errors.Is(err, c.want) {
				t.Fatalf("Encode err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestWorkerEvents(t *testing.T) {
	for _, ev := range sampleEvents() {
		b, _ := Encode(ev)
		got, err := DecodeWorkerEvent(b)
		switch ev.Kind() {
		case KindCompletion, KindEviction:
			if err != nil || got.Kind() != ev.Kind() {
				t.Fatalf("%s: %v", ev.Kind(), err)
			}
		default:
			if !errors.Is(err, ErrType) {
				t.Fatalf("%s on worker-events: err = %v, want ErrType", ev.Kind(), err)
			}
		}
	}
}

func TestResultBody(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		enc  string
	}{
		{"json", []byte(`{"a": [1,2]}`), BodyJSON},
		{"text", []byte("hello <world>\n"), BodyText},
		{"binary", []byte{0xff, 0x00, 0x10}, BodyBase64},
		{"empty", nil, BodyJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Result{ID: testID, Status: 200}
			r.SetBody(c.in, "text/plain")
			if r.BodyEncoding != c.enc {
				t.Fatalf("encoding %q, want %q", r.BodyEncoding, c.enc)
			}
			b, err := Encode(r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeResult(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := back.BodyBytes()
			if err != nil || !bytes.Equal(got, c.in) {
				t.Fatalf("body %q (%v), want %q", got, err, c.in)
			}
		})
	}
}

func TestNames(t *testing.T) {
	n := Config{}.Names()
	if n.Arrivals() != "pullsched.arrivals" || n.Invoker("w1") != "pullsched.invoker.w1" || n.Results("c") != "pullsched.results.c" {
		t.Fatalf("names: %s %s %s", n.Arrivals(), n.Invoker("w1"), n.Results("c"))
	}
	if got := (Config{NoPrefix: true}).Names().Workers(); got != "workers" {
		t.Fatalf("bare: %s", got)
	}
	if err := (Config{Prefix: "a b"}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad prefix accepted: %v", err)
	}
}

func fuzzSeeds(f *testing.F) {
	for _, ev := range sampleEvents() {
		b, _ := Encode(ev)
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"type":"arrival","id":null}`))
}

// fuzzDecoder checks that a decoder never panics and that whatever it accepts
// encodes and decodes to the same event.
func fuzzDecoder(f *testing.F, decode func([]byte) (Event, error)) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decode(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			return
		}
		enc, err := Encode(ev)
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		back, err := decode(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		e1, _ := Encode(back)
		if !bytes.Equal(e1, enc) {
			t.Fatalf("not stable:\n%s\n%s", enc, e1)
		}
	})
}

func FuzzDecode(f *testing.F) { fuzzDecoder(f, Decode) }

func FuzzDecodeArrival(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (Event, error) { return DecodeArrival(b) })
}

func FuzzDecodeAssignment(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (Event, error) { return DecodeAssignment(b) })
}

func FuzzDecodeResult(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (Event, error) { return DecodeResult(b) })
}

func FuzzDecodeWorker(f *testing.F) {
	fuzzDecoder(f, func(b []byte) (Event, error) { return DecodeWorker(b) })
}

func FuzzDecodeWorkerEvent(f *testing.F) { fuzzDecoder(f, DecodeWorkerEvent) }

// BenchmarkDecode measures decoding each event kind from its wire form.
func BenchmarkDecode(b *testing.B) {
	for _, ev := range sampleEvents() {
		enc, _ := Encode(ev)
		b.Run(string(ev.Kind()), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDuplicateTypeKeyCaught: a record that starts like an arrival but
// names another type later is refused, not decoded half as each.
func TestDuplicateTypeKeyCaught(t *testing.T) {
	in := `{"v":1,"type":"arrival","id":"` + testID + `","fn":"f","type":"result"}`
	if _, err := DecodeArrival([]byte(in)); !errors.Is(err, ErrType) {
		t.Fatalf("err = %v, want ErrType", err)
	}
	in = `{"v":1,"type":"arrival","id":"` + testID + `","fn":"f","v":2}`
	if _, err := Decode([]byte(in)); !errors.Is(err, ErrVersion) {
		t.Fatalf("err = %v, want ErrVersion", err)
	}
}

// BenchmarkEncode measures encoding each event kind to its wire form.
func BenchmarkEncode(b *testing.B) {
	for _, ev := range sampleEvents() {
		b.Run(string(ev.Kind()), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
