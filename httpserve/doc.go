// Package httpserve runs the HTTP servers of pullsched's parts the same
// way: bounded timeouts, health and readiness endpoints, Prometheus metrics
// from the part's own registry, error-returning handlers with one adapter
// that writes JSON errors, and a staged graceful shutdown.
package httpserve
