package topics

import (
	"errors"
	"fmt"
)

// Sentinel errors of the codec; a DecodeError wraps exactly one of them, so
// callers can branch with errors.Is.
var (
	// ErrMalformed: the bytes are not a JSON object.
	ErrMalformed = errors.New("malformed event")
	// ErrVersion: the v field is absent or names a version this build does
	// not speak.
	ErrVersion = errors.New("unsupported event version")
	// ErrType: the type field is absent or not the expected one.
	ErrType = errors.New("unexpected event type")
	// ErrMissing: a required field is absent or empty.
	ErrMissing = errors.New("missing required field")
	// ErrInvalid: a field is present but its value is not acceptable.
	ErrInvalid = errors.New("invalid field")
)

// DecodeError says why a record could not be decoded. It is what the
// consumer puts in the dead-letter header.
type DecodeError struct {
	Kind  Kind   // the event type that was expected or announced, if known
	Field string // the offending field, if one is to blame
	Err   error  // one of the sentinels above
	Msg   string // detail for humans
}

func (e *DecodeError) Error() string {
	s := e.Err.Error()
	if e.Kind != "" {
		s = string(e.Kind) + ": " + s
	}
	if e.Field != "" {
		s += " " + e.Field
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

func (e *DecodeError) Unwrap() error { return e.Err }

func missing(k Kind, field string) error {
	return &DecodeError{Kind: k, Field: field, Err: ErrMissing}
}

func invalid(k Kind, field, format string, args ...any) error {
	return &DecodeError{Kind: k, Field: field, Err: ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}
