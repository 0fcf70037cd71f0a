// Package kafkaconn holds what every pullsched part needs to reach Kafka:
// the seed brokers, the client id, TLS and SASL. It is the one place these
// settings are defined, validated, registered as flags and turned into
// franz-go options; the producer and consumer packages build every client
// from it, and each part's Config carries one as its Kafka field.
//
// The SASL password is a Secret: it prints, logs and marshals as
// "[redacted]", so a Config can be logged or dumped as it is.
package kafkaconn
