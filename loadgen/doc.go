// Package loadgen drives the workload of the Hiku evaluation (CCGrid 2025)
// against any controller that serves POST /run/<fn>, and computes the
// paper's metrics from what it saw.
//
// # Workload
//
// Closed-loop virtual users (VUs) run in stages (default 20, 50 and 100 VUs
// for 100 s each). A VU sends a request, waits for the answer, then thinks
// for a uniform ThinkMin–ThinkMax (default 0.1–1.0 s) before the next one; it
// starts no request after its stage has ended, and the next stage begins once
// every VU of the current one has returned.
//
// The functions are the 8 FunctionBench functions × Copies (default 5)
// copies, named "<function>-<copy>" with copy counted from 0
// ("gzip_compression-0" … "gzip_compression-4"). Each gets a weight drawn
// from the Azure Functions 2021 per-function invocation counts (package
// workload): a seeded sample, without replacement, of 8×Copies of the 424
// counts, normalised to probabilities. Requests carry the FunctionBench
// payload of the function's base name.
//
// Determinism: every VU has its own random source seeded from (Seed, stage,
// VU index) and draws the function and the think time of its k-th request
// before sending it, so the same seed gives every scheduler the same
// sequence of functions and think times per VU, whatever the latencies.
// How many requests a VU gets through in a stage does depend on latencies.
//
// # Time scale
//
// TimeScale scales every duration of the workload (stage lengths, think
// times, the request timeout): 0.1 runs ten times faster. A simulated
// cluster (workersim) given the same factor executes functions in scaled time
// too, so loadgen divides every measured wall-clock latency by TimeScale and
// reports model time, comparable to a real-time run. Overheads that do not
// scale (HTTP, Kafka, scheduling) are magnified by 1/TimeScale in the
// reported figures.
//
// # Metrics
//
// Per stage and overall (see Summary): requests, errors (a non-2xx status or
// a transport failure), mean and p50/p90/p95/p99 latency of the successful
// requests, requests per second, cold-start rate and load imbalance. A
// percentile is the nearest-rank one: the smallest latency at or above which
// p% of the sorted samples lie (rank ⌈p/100·n⌉). The cold-start rate is the
// fraction of answers saying X-Cold-Start 1 among those that said 1 or 0.
// Load imbalance is the paper's: for each (model-time) second in which at
// least one request was assigned, the coefficient of variation (population
// standard deviation / mean) of the requests assigned to each worker in that
// second, counting every worker seen in the run (0 for a worker that got
// none), averaged over those seconds. A request is assigned to the worker
// named by the answer's X-Worker header, in the second it was sent.
package loadgen
