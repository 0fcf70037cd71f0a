package main

import (
	"context"
	"flag"
	"time"

	"github.com/pullsched/pullsched/tracing"
)

// addTraceFlag registers --trace (PULLSCHED_TRACE) on the subcommands with
// the common flags: every part, so that one setting fits every service.
func addTraceFlag(fs *flag.FlagSet, c *common) {
	if fs.Lookup("brokers") == nil {
		return
	}
	fs.BoolVar(&c.trace, "trace", false, "export OpenTelemetry traces over OTLP/HTTP, configured by the OTEL_* variables; "+
		"also on when OTEL_TRACES_EXPORTER=otlp or OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/OBSERVABILITY.md)")
}

// startTracing turns tracing on for a subcommand that has --trace when it
// or the OTEL_* variables ask, naming the service pullsched-<command>. The
// returned function flushes the spans left (for at most 5s) and stops.
func startTracing(ctx context.Context, fs *flag.FlagSet, c *common, name string, getenv func(string) string) (stop func(), err error) {
	if fs.Lookup("trace") == nil {
		return func() {}, nil
	}
	shutdown, err := tracing.Setup(ctx, tracing.Config{Flag: c.trace, Service: "pullsched-" + name, Getenv: getenv, Logger: c.log})
	if err != nil {
		return nil, err
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			c.log.Warn().Err(err).Msg("tracing: spans not flushed")
		}
	}, nil
}
