// Package schedbench measures the scheduler alone: one replica fed
// arrivals through a broker (embedded, or a running Kafka), with no-op
// bridges that complete every assignment at once, reporting decisions per
// second and the latency from arrival to assignment. It is dev-only
// machinery for `pullsched bench scheduler` and BenchmarkSchedulerLoop,
// kept out of the scheduler package so that the embedded broker (kfake) is
// not linked into the parts.
package schedbench
