// Package conntest gives tests of Kafka-facing code a certificate
// authority made on the spot and an embedded broker (kfake) that requires
// TLS, SASL or both, so the settings of package kafkaconn can be exercised
// end to end without a real cluster.
package conntest
