// Package topics owns the wire contract of pullsched: topic names (with a
// configurable prefix), their partition and retention settings, the event
// types that flow through them with their versioned JSON codec, and topic
// provisioning through kadm.
//
// It knows nothing of policies or HTTP.
package topics
