// Package pipeline is how an existing pipeline uses pullsched through Kafka
// alone, written with sarama as any outside client would be: it produces
// arrivals keyed by function (placed with Kafka's murmur2 partitioning, so
// they co-partition with worker-events) with reply set to its own id, and
// reads the answers from its own results topic, results.<id>.
//
// docs/PIPELINE.md shows this file verbatim; a test runs it against a
// pullsched cluster.
package pipeline
