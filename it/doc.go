// Package it holds pullsched's integration tests and the harness that gives
// each of them a Kafka broker.
//
// The broker comes from, in order of preference:
//
//  1. PULLSCHED_IT_BROKERS (comma-separated host:port list): an external
//     broker, e.g. the Apache Kafka that scripts/kafka.sh starts in CI. All
//     tests share it, so each test works under its own topic prefix.
//  2. A Kafka container started with testcontainers, when a Docker engine
//     answers a ping within two seconds (set PULLSCHED_IT_NO_DOCKER=1 to
//     skip it): PULLSCHED_IT_KAFKA_IMAGE, default apache/kafka, as a
//     generic container on the host network (see testcontainers.go). One
//     container serves the whole test binary when TestMain calls Main.
//  3. The embedded kfake broker of package broker, one per test.
//
// Tests never skip for want of a broker: the embedded one is always there,
// and a configured external broker that does not answer fails the test.
package it
