package topics

import "net/http"

// Reasons a Result can carry when it is a failure; ReasonStatus gives the
// HTTP status each one is answered with.
const (
	ReasonOverloaded   = "overloaded"    // pending queue full, or the ingress shedding load
	ReasonNoWorkers    = "no_workers"    // no worker in rotation
	ReasonUnavailable  = "unavailable"   // the broker refused the assignment, attempt after attempt
	ReasonTimeout      = "timeout"       // deadline passed
	ReasonWorkerFailed = "worker_failed" // the worker refused or errored, or its answer was unreadable
)

// ReasonStatus returns the HTTP status a failure with reason is answered
// with: 429 overloaded, 503 no_workers and unavailable, 504 timeout, 502
// worker_failed; false for any other reason (or none).
func ReasonStatus(reason string) (int, bool) {
	switch reason {
	case ReasonOverloaded:
		return http.StatusTooManyRequests, true
	case ReasonNoWorkers, ReasonUnavailable:
		return http.StatusServiceUnavailable, true
	case ReasonTimeout:
		return http.StatusGatewayTimeout, true
	case ReasonWorkerFailed:
		return http.StatusBadGateway, true
	}
	return 0, false
}
