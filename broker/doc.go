// Package broker runs an embedded Kafka-compatible broker (franz-go's kfake)
// in process, for `pullsched broker`, `pullsched dev` and tests.
//
// The broker speaks the Kafka protocol, including classic consumer groups,
// idempotent producers and the admin API, and listens on loopback only unless
// told otherwise. With a data directory it keeps topics, records and
// committed offsets across restarts.
package broker
