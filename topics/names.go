package topics

import (
	"fmt"
)

// DefaultPrefix is the prefix every topic name carries unless configured
// otherwise.
const DefaultPrefix = "pullsched."

// Base names of the fixed topics, before the prefix.
const (
	ArrivalsBase     = "arrivals"
	WorkerEventsBase = "worker-events"
	WorkersBase      = "workers"
	DLQBase          = "dlq"
	InvokerBase      = "invoker."
	ResultsBase      = "results."
)

// Names computes topic names under one prefix. The zero value uses no prefix
// at all; use NewNames to get the default.
type Names struct {
	Prefix string
}

// NewNames returns the names under prefix. An empty prefix keeps the names
// bare; pass DefaultPrefix for the default.
func NewNames(prefix string) Names { return Names{Prefix: prefix} }

// Arrivals is the topic of arrival events, keyed by function.
func (n Names) Arrivals() string { return n.Prefix + ArrivalsBase }

// WorkerEvents is the topic of completions and evictions, keyed by function
// and co-partitioned with Arrivals.
func (n Names) WorkerEvents() string { return n.Prefix + WorkerEventsBase }

// Workers is the compacted membership and heartbeat topic, keyed by worker id.
func (n Names) Workers() string { return n.Prefix + WorkersBase }

// DLQ is the dead-letter topic for records that could not be decoded.
func (n Names) DLQ() string { return n.Prefix + DLQBase }

// Invoker is the assignment topic of one worker.
func (n Names) Invoker(worker string) string { return n.Prefix + InvokerBase + worker }

// InvokerGroup is the consumer group of the bridge serving one worker: the
// same name as its topic. Its committed offset is where the assignments
// no bridge has taken yet begin.
func (n Names) InvokerGroup(worker string) string { return n.Invoker(worker) }

// Results is the result topic of one controller (ingress instance or outside
// pipeline).
func (n Names) Results(controller string) string { return n.Prefix + ResultsBase + controller }

// nameChars reports whether s is 1 to 128 of [A-Za-z0-9_.-]: the rule for
// function names, and for worker and controller ids, which become part of
// topic names (Kafka allows [a-zA-Z0-9._-] and 249 characters there). A
// loop, not a regular expression: every event is checked on every hop.
func nameChars(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ValidFunction reports whether name is an acceptable function name:
// letters, digits, '_', '.', '-', at most 128 characters.
func ValidFunction(name string) bool { return nameChars(name) }

// ValidID reports whether id is an acceptable worker or controller id (it
// becomes part of a topic name).
func ValidID(id string) bool { return nameChars(id) && id != "." && id != ".." }

// CheckFunction returns a descriptive error when name is not a valid function
// name.
func CheckFunction(name string) error {
	if !ValidFunction(name) {
		return fmt.Errorf("%w: function %q: want 1-128 of letters, digits, '_', '.', '-'", ErrInvalid, name)
	}
	return nil
}

// CheckID returns a descriptive error when id is not a valid worker or
// controller id.
func CheckID(kind, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %s id %q: want 1-128 of letters, digits, '_', '.', '-'", ErrInvalid, kind, id)
	}
	return nil
}
