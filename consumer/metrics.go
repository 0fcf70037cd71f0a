package consumer

import "github.com/prometheus/client_golang/prometheus"

// DeadLetterCounts are a part's dead-letter counters.
type DeadLetterCounts struct {
	Letters    int64 // records dead-lettered, copies and references
	References int64 // of Letters, references to records too large to copy
	Failures   int64 // records that could not be dead-lettered at all and were skipped
}

// Add returns the sum of a and b.
func (a DeadLetterCounts) Add(b DeadLetterCounts) DeadLetterCounts {
	return DeadLetterCounts{a.Letters + b.Letters, a.References + b.References, a.Failures + b.Failures}
}

// Counts returns DeadLettered, DeadLetterReferences and DeadLetterFailures
// read at once.
func (c *Consumer) Counts() DeadLetterCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return DeadLetterCounts{Letters: c.dlqd, References: c.dlqRefs, Failures: c.dlqFailed}
}

// DeadLetterMetrics returns the counters <ns>_<sub>_dead_letters_total,
// <ns>_<sub>_dead_letter_references_total and
// <ns>_<sub>_dead_letter_failures_total, which call counts on every scrape.
// What counts returns must never decrease.
func DeadLetterMetrics(ns, sub string, counts func() DeadLetterCounts) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letters_total",
			Help: "Undecodable records sent to the dead-letter topic, as copies or as references."},
			func() float64 { return float64(counts().Letters) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letter_references_total",
			Help: "Dead letters sent as a reference (origin, size, a prefix) because the record was too large to copy."},
			func() float64 { return float64(counts().References) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letter_failures_total",
			Help: "Undecodable records that could not be dead-lettered even after retries and were skipped (lost)."},
			func() float64 { return float64(counts().Failures) }),
	}
}
