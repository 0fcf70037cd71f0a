package it

import (
	"os"
	"testing"
)

// TestMain prints once which broker the integration tests use, so CI logs
// show whether they ran against Apache Kafka, a container or kfake.
func TestMain(m *testing.M) { os.Exit(Main(m)) }
