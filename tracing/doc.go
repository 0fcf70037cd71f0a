// Package tracing gives pullsched's parts OpenTelemetry tracing: one trace
// per activation, carried across processes in W3C trace context — the
// traceparent and tracestate headers — on HTTP and on Kafka records.
//
// Tracing is off by default, and off it costs a branch on an atomic flag
// per record: nothing is extracted, injected or allocated. Setup turns it on
// (the --trace flag, OTEL_TRACES_EXPORTER=otlp, or an OTLP endpoint in the
// environment) with an OTLP/HTTP exporter configured by the standard OTEL_*
// variables; tests install their own provider with Use.
//
// The spans of one activation (docs/OBSERVABILITY.md draws them):
//
//	ingress          controller  the /run request, from arrival to answer (server; honours an incoming traceparent)
//	arrival wait     scheduler   the arrival's time in Kafka: produced → taken by the scheduler
//	schedule         scheduler   taken → assignment acknowledged by the broker (or the rejection published)
//	assignment wait  invoker     the assignment's time in Kafka and in the bridge's queue: produced → call starts
//	invoke           invoker     the call and the publishing of its completion and result
//	worker call      invoker     the HTTP call to the worker (client; the worker gets a traceparent)
//	result wait      controller  the result's way back: produced → handed to the waiting request
//
// Records carry the context of the span that produced them, in the header
// format of franz-go's kotel plugin (its RecordCarrier), so kotel-traced
// consumers and producers elsewhere join the same traces. The plugin's
// client hooks are not installed: they would trace every record of every
// client (heartbeats, worker records, completions) as traces of their own,
// and they do not see a record's wait in Kafka, which is the span an
// operator of pullsched most needs.
package tracing
