// Package producer publishes pullsched events with franz-go: idempotent,
// acks from all in-sync replicas, low linger, keyed as DESIGN.md says, with
// bounded buffering and delivery errors returned to the caller.
package producer
