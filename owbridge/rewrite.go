package owbridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// member is one top-level member of a JSON object, as it came.
type member struct {
	key string
	raw json.RawMessage
}

// members splits a JSON object into its top-level members, keeping each
// value's bytes exactly as they came.
func members(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, msgErr("json", "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, msgErr("json", "not an object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, msgErr("json", "%v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, msgErr("json", "member name is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, msgErr("json", "member %q: %v", key, err)
		}
		out = append(out, member{key: key, raw: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, msgErr("json", "%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, msgErr("json", "data after the object")
	}
	return out, nil
}

// RewriteAck returns the acknowledgement b with its instance (the member
// named instanceField) replaced by inst and its isSystemError, when
// present, replaced by systemError; every other member keeps its bytes
// and its place. A result ack, which has neither, comes back unchanged.
func RewriteAck(b []byte, instanceField string, inst InvokerInstanceID, systemError bool) ([]byte, error) {
	ms, err := members(b)
	if err != nil {
		return nil, err
	}
	if instanceField == "" {
		instanceField = "instance"
	}
	instJSON, err := inst.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(instJSON))
	out.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			out.WriteByte(',')
		}
		key, _ := json.Marshal(m.key)
		out.Write(key)
		out.WriteByte(':')
		switch m.key {
		case instanceField:
			out.Write(instJSON)
		case "isSystemError":
			fmt.Fprintf(&out, "%t", systemError)
		default:
			out.Write(m.raw)
		}
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}
