package topics

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// SetBody stores a worker's answer in r: JSON bytes verbatim, other UTF-8
// text as a JSON string, anything else as base64.
func (r *Result) SetBody(b []byte, contentType string) {
	r.ContentType = contentType
	switch {
	case len(b) == 0:
		r.Body, r.BodyEncoding = nil, BodyJSON
	case json.Valid(b):
		r.Body, r.BodyEncoding = json.RawMessage(b), BodyJSON
	case utf8.Valid(b):
		s, _ := json.Marshal(string(b))
		r.Body, r.BodyEncoding = s, BodyText
	default:
		s, _ := json.Marshal(base64.StdEncoding.EncodeToString(b))
		r.Body, r.BodyEncoding = s, BodyBase64
	}
}

// BodyBytes returns the worker's answer as it was before SetBody.
func (r *Result) BodyBytes() ([]byte, error) {
	switch r.BodyEncoding {
	case BodyJSON:
		return r.Body, nil
	case BodyText, BodyBase64:
		var s string
		if err := json.Unmarshal(r.Body, &s); err != nil {
			return nil, fmt.Errorf("result %s: body: %w", r.ID, err)
		}
		if r.BodyEncoding == BodyText {
			return []byte(s), nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("result %s: body: %w", r.ID, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("result %s: %w: body_encoding %q", r.ID, ErrInvalid, r.BodyEncoding)
}
