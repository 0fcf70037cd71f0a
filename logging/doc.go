// Package logging builds the zerolog loggers of pullsched and connects them
// to the Kafka client's logger.
package logging
