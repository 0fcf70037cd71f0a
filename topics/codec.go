package topics

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// The hot events (arrival, assignment, completion, result, eviction) are
// written and read by hand, without reflection: every request of the chain
// is four records, each encoded once and decoded at least once, and
// encoding/json's reflection was a few percent of the whole chain's CPU
// (docs/BENCHMARKS.md, "Where the CPU goes"). The wire form is unchanged,
// byte for byte: the appenders write what encoding/json wrote, in struct
// order, and fall back to it for anything but the plain cases (strings
// that need escaping, floats in exponent form, times outside RFC 3339).
// The readers take only the plain form this package writes (any key
// order, JSON whitespace) and decline anything else — escapes, unknown or
// repeated keys, null, numbers an int cannot hold — which then takes
// encoding/json's path, so what is accepted and how errors read is
// encoding/json's. codec_test.go checks both against encoding/json.

// appendHeader starts an event: {"v":1,"type":"<kind>".
func appendHeader(b []byte, k Kind) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, Version, 10)
	b = append(b, `,"type":"`...)
	b = append(b, k...)
	return append(b, '"')
}

// plainString reports whether encoding/json writes s as its bytes between
// quotes: printable ASCII without quote, backslash or HTML specials.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// enc appends one event's fields; err is the first value encoding/json
// refused, after which appending does nothing.
type enc struct {
	b   []byte
	err error
}

func (e *enc) key(k string) {
	e.b = append(e.b, ',', '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *enc) fallback(v any) {
	if e.err != nil {
		return
	}
	j, err := json.Marshal(v)
	if err != nil {
		e.err = err
		return
	}
	e.b = append(e.b, j...)
}

func (e *enc) str(k, s string) {
	e.key(k)
	if !plainString(s) {
		e.fallback(s)
		return
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, s...)
	e.b = append(e.b, '"')
}

func (e *enc) strOmit(k, s string) {
	if s != "" {
		e.str(k, s)
	}
}

func (e *enc) int(k string, n int) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, int64(n), 10)
}

func (e *enc) intOmit(k string, n int) {
	if n != 0 {
		e.int(k, n)
	}
}

func (e *enc) bool(k string, v bool) {
	e.key(k)
	e.b = strconv.AppendBool(e.b, v)
}

func (e *enc) boolOmit(k string, v bool) {
	if v {
		e.bool(k, v)
	}
}

// float writes f as encoding/json does: plain decimal from 1e-6 to 1e21
// (and 0), which is every duration in milliseconds; the rest (exponent
// form, NaN and infinities, which it refuses) is left to encoding/json.
func (e *enc) float(k string, f float64) {
	e.key(k)
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) || math.IsNaN(f) || math.IsInf(f, 0) {
		e.fallback(f)
		return
	}
	e.b = strconv.AppendFloat(e.b, f, 'f', -1, 64)
}

func (e *enc) floatOmit(k string, f float64) {
	if f != 0 {
		e.float(k, f)
	}
}

// timeOmit writes t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds), unless t is zero. Years outside 0-9999 and offsets that
// are not whole minutes or reach a day are left to MarshalJSON.
func (e *enc) timeOmit(k string, t time.Time) {
	if t.IsZero() {
		return
	}
	e.key(k)
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		e.fallback(t)
		return
	}
	e.b = append(e.b, '"')
	e.b = t.AppendFormat(e.b, time.RFC3339Nano)
	e.b = append(e.b, '"')
}

// raw splices already valid JSON in verbatim (Validate checked it).
func (e *enc) raw(k string, r json.RawMessage) {
	if len(r) > 0 {
		e.key(k)
		e.b = append(e.b, r...)
	}
}

// appendEvent appends ev's wire form to b; ok is false for a type it does
// not write by hand (Worker, with its map), which Encode leaves to
// encoding/json. Raw payloads and bodies come last, as Encode always
// wrote them.
func appendEvent(b []byte, ev Event) (_ []byte, ok bool, err error) {
	e := enc{b: appendHeader(b, ev.Kind())}
	switch v := ev.(type) {
	case *Arrival:
		e.str("id", v.ID)
		e.str("fn", v.Function)
		e.strOmit("reply", v.Reply)
		e.intOmit("class", v.Class)
		e.intOmit("memory_mb", v.MemoryMB)
		e.timeOmit("arrived", v.Arrived)
		e.timeOmit("deadline", v.Deadline)
		e.raw("payload", v.Payload)
	case *Assignment:
		e.str("id", v.ID)
		e.str("fn", v.Function)
		e.strOmit("reply", v.Reply)
		e.str("worker", v.Worker)
		e.strOmit("worker_url", v.WorkerURL)
		e.intOmit("class", v.Class)
		e.boolOmit("warm", v.Warm)
		e.timeOmit("arrived", v.Arrived)
		e.timeOmit("assigned", v.Assigned)
		e.timeOmit("deadline", v.Deadline)
		e.strOmit("scheduler", v.Scheduler)
		e.raw("payload", v.Payload)
	case *Completion:
		e.str("id", v.ID)
		e.str("fn", v.Function)
		e.str("worker", v.Worker)
		e.bool("ok", v.OK)
		e.intOmit("status", v.Status)
		e.strOmit("start", string(v.Start))
		e.boolOmit("warm_hint", v.WarmHint)
		e.float("duration_ms", v.DurationMs)
		e.strOmit("error", v.Error)
		e.timeOmit("at", v.At)
	case *Eviction:
		e.str("fn", v.Function)
		e.str("worker", v.Worker)
		e.timeOmit("at", v.At)
	case *Result:
		e.str("id", v.ID)
		e.strOmit("fn", v.Function)
		e.int("status", v.Status)
		e.strOmit("body_encoding", v.BodyEncoding)
		e.strOmit("content_type", v.ContentType)
		e.strOmit("worker", v.Worker)
		e.strOmit("start", string(v.Start))
		e.floatOmit("duration_ms", v.DurationMs)
		e.strOmit("reason", v.Reason)
		e.strOmit("error", v.Error)
		e.strOmit("source", v.Source)
		e.timeOmit("at", v.At)
		e.raw("body", v.Body)
	default:
		return b, false, nil
	}
	if e.err != nil {
		return b, true, e.err
	}
	return append(e.b, '}'), true, nil
}

// dec reads one flat JSON object of the plain form; ok turns false at the
// first thing it does not take, after which every read fails.
type dec struct {
	b  []byte
	i  int
	ok bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (d *dec) ws() {
	for d.i < len(d.b) && isSpace(d.b[d.i]) {
		d.i++
	}
}

// next skips whitespace and consumes c.
func (d *dec) next(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// rawString returns the bytes between the quotes of a string without
// escapes or control characters, in valid UTF-8.
func (d *dec) rawString() []byte {
	d.ws()
	if !d.ok || d.i >= len(d.b) || d.b[d.i] != '"' {
		d.ok = false
		return nil
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			s := d.b[start:j]
			if !ascii && !utf8.Valid(s) {
				d.ok = false
				return nil
			}
			d.i = j + 1
			return s
		case c == '\\' || c < 0x20:
			d.ok = false
			return nil
		case c >= 0x80:
			ascii = false
		}
	}
	d.ok = false
	return nil
}

func (d *dec) str() string { return string(d.rawString()) }

// number returns the bytes of a JSON number.
func (d *dec) number() []byte {
	d.ws()
	b, i := d.b, d.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		d.ok = false
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.ok = false
			return nil
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.ok = false
			return nil
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return b[start:i]
}

// int reads an integer without fraction or exponent that fits an int.
func (d *dec) int() int {
	s := d.number()
	if !d.ok {
		return 0
	}
	n, err := strconv.ParseInt(string(s), 10, 0)
	if err != nil {
		d.ok = false
		return 0
	}
	return int(n)
}

func (d *dec) float() float64 {
	s := d.number()
	if !d.ok {
		return 0
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		d.ok = false
		return 0
	}
	return f
}

func (d *dec) bool() bool {
	d.ws()
	switch {
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		d.i += 4
		return true
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		d.i += 5
		return false
	}
	d.ok = false
	return false
}

// time reads a string through time.Time's UnmarshalJSON, as
// encoding/json does.
func (d *dec) time(t *time.Time) {
	d.ws()
	start := d.i
	d.rawString()
	if !d.ok {
		return
	}
	if err := t.UnmarshalJSON(d.b[start:d.i]); err != nil {
		d.ok = false
	}
}

// raw reads any JSON value but null and returns a copy of its bytes, as
// encoding/json fills a json.RawMessage.
func (d *dec) raw() json.RawMessage {
	d.ws()
	start := d.i
	depth := 0
	for d.ok && d.i < len(d.b) {
		switch c := d.b[d.i]; c {
		case '{', '[':
			depth++
			d.i++
		case '}', ']':
			if depth == 0 {
				d.ok = false
				return nil
			}
			depth--
			d.i++
		case '"':
			d.skipString()
		case ',', ':':
			if depth == 0 {
				d.ok = false
				return nil
			}
			d.i++
		default:
			if isSpace(c) && depth > 0 {
				d.i++
				continue
			}
			if isSpace(c) {
				d.ok = false
				return nil
			}
			for d.i < len(d.b) && !isSpace(d.b[d.i]) && !isDelim(d.b[d.i]) {
				d.i++
			}
		}
		if depth == 0 {
			break
		}
	}
	v := d.b[start:d.i]
	if !d.ok || depth != 0 || len(v) == 0 || string(v) == "null" || !json.Valid(v) {
		d.ok = false
		return nil
	}
	return append(json.RawMessage(nil), v...)
}

func isDelim(c byte) bool {
	return c == ',' || c == ':' || c == '{' || c == '}' || c == '[' || c == ']' || c == '"'
}

// skipString moves past a string, escapes included; json.Valid judges it.
func (d *dec) skipString() {
	for j := d.i + 1; j < len(d.b); j++ {
		switch d.b[j] {
		case '\\':
			j++
		case '"':
			d.i = j + 1
			return
		}
	}
	d.ok = false
}

// object reads the object's keys, calling field for each after its colon;
// field reads the value and returns false for a key it does not take.
// Each key may come once (seen holds a bit per field index).
func (d *dec) object(field func(key []byte) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		d.ws()
		return d.i == len(d.b)
	}
	for d.ok {
		k := d.rawString()
		if !d.ok || !d.next(':') || !field(k) || !d.ok {
			return false
		}
		if d.next(',') {
			continue
		}
		if !d.next('}') {
			return false
		}
		d.ws()
		return d.i == len(d.b)
	}
	return false
}

// once reports whether bit is not yet in seen, and adds it.
func once(seen *uint32, bit uint) bool {
	if *seen&(1<<bit) != 0 {
		return false
	}
	*seen |= 1 << bit
	return true
}

// readEvent decodes b into ev and h the fast way; false when b is not of
// the plain form (ev and h are then untouched) or ev is not a hand-read
// type. Validation is the caller's.
func readEvent(b []byte, ev Event, h *header) bool {
	d := dec{b: b, ok: true}
	var seen uint32
	var v int
	var typ Kind
	head := func(k []byte) (handled, ok bool) {
		switch string(k) {
		case "v":
			if !once(&seen, 31) {
				return true, false
			}
			v = d.int()
			return true, d.ok
		case "type":
			if !once(&seen, 30) {
				return true, false
			}
			typ = Kind(d.str())
			return true, d.ok
		}
		return false, false
	}
	var ok bool
	switch e := ev.(type) {
	case *Arrival:
		x := *e
		ok = d.object(func(k []byte) bool {
			if handled, ok := head(k); handled {
				return ok
			}
			switch string(k) {
			case "id":
				x.ID = d.str()
				return once(&seen, 0)
			case "fn":
				x.Function = d.str()
				return once(&seen, 1)
			case "payload":
				x.Payload = d.raw()
				return once(&seen, 2)
			case "reply":
				x.Reply = d.str()
				return once(&seen, 3)
			case "class":
				x.Class = d.int()
				return once(&seen, 4)
			case "memory_mb":
				x.MemoryMB = d.int()
				return once(&seen, 5)
			case "arrived":
				d.time(&x.Arrived)
				return once(&seen, 6)
			case "deadline":
				d.time(&x.Deadline)
				return once(&seen, 7)
			}
			return false
		}) && d.ok
		if ok {
			*e = x
		}
	case *Assignment:
		x := *e
		ok = d.object(func(k []byte) bool {
			if handled, ok := head(k); handled {
				return ok
			}
			switch string(k) {
			case "id":
				x.ID = d.str()
				return once(&seen, 0)
			case "fn":
				x.Function = d.str()
				return once(&seen, 1)
			case "payload":
				x.Payload = d.raw()
				return once(&seen, 2)
			case "reply":
				x.Reply = d.str()
				return once(&seen, 3)
			case "worker":
				x.Worker = d.str()
				return once(&seen, 4)
			case "worker_url":
				x.WorkerURL = d.str()
				return once(&seen, 5)
			case "class":
				x.Class = d.int()
				return once(&seen, 6)
			case "warm":
				x.Warm = d.bool()
				return once(&seen, 7)
			case "arrived":
				d.time(&x.Arrived)
				return once(&seen, 8)
			case "assigned":
				d.time(&x.Assigned)
				return once(&seen, 9)
			case "deadline":
				d.time(&x.Deadline)
				return once(&seen, 10)
			case "scheduler":
				x.Scheduler = d.str()
				return once(&seen, 11)
			}
			return false
		}) && d.ok
		if ok {
			*e = x
		}
	case *Completion:
		x := *e
		ok = d.object(func(k []byte) bool {
			if handled, ok := head(k); handled {
				return ok
			}
			switch string(k) {
			case "id":
				x.ID = d.str()
				return once(&seen, 0)
			case "fn":
				x.Function = d.str()
				return once(&seen, 1)
			case "worker":
				x.Worker = d.str()
				return once(&seen, 2)
			case "ok":
				x.OK = d.bool()
				return once(&seen, 3)
			case "status":
				x.Status = d.int()
				return once(&seen, 4)
			case "start":
				x.Start = Start(d.str())
				return once(&seen, 5)
			case "warm_hint":
				x.WarmHint = d.bool()
				return once(&seen, 6)
			case "duration_ms":
				x.DurationMs = d.float()
				return once(&seen, 7)
			case "error":
				x.Error = d.str()
				return once(&seen, 8)
			case "at":
				d.time(&x.At)
				return once(&seen, 9)
			}
			return false
		}) && d.ok
		if ok {
			*e = x
		}
	case *Eviction:
		x := *e
		ok = d.object(func(k []byte) bool {
			if handled, ok := head(k); handled {
				return ok
			}
			switch string(k) {
			case "fn":
				x.Function = d.str()
				return once(&seen, 0)
			case "worker":
				x.Worker = d.str()
				return once(&seen, 1)
			case "at":
				d.time(&x.At)
				return once(&seen, 2)
			}
			return false
		}) && d.ok
		if ok {
			*e = x
		}
	case *Result:
		x := *e
		ok = d.object(func(k []byte) bool {
			if handled, ok := head(k); handled {
				return ok
			}
			switch string(k) {
			case "id":
				x.ID = d.str()
				return once(&seen, 0)
			case "fn":
				x.Function = d.str()
				return once(&seen, 1)
			case "status":
				x.Status = d.int()
				return once(&seen, 2)
			case "body":
				x.Body = d.raw()
				return once(&seen, 3)
			case "body_encoding":
				x.BodyEncoding = d.str()
				return once(&seen, 4)
			case "content_type":
				x.ContentType = d.str()
				return once(&seen, 5)
			case "worker":
				x.Worker = d.str()
				return once(&seen, 6)
			case "start":
				x.Start = Start(d.str())
				return once(&seen, 7)
			case "duration_ms":
				x.DurationMs = d.float()
				return once(&seen, 8)
			case "reason":
				x.Reason = d.str()
				return once(&seen, 9)
			case "error":
				x.Error = d.str()
				return once(&seen, 10)
			case "source":
				x.Source = d.str()
				return once(&seen, 11)
			case "at":
				d.time(&x.At)
				return once(&seen, 12)
			}
			return false
		}) && d.ok
		if ok {
			*e = x
		}
	default:
		return false
	}
	if !ok {
		return false
	}
	if seen&(1<<31) != 0 {
		h.V = &v
	}
	h.Type = typ
	return true
}
