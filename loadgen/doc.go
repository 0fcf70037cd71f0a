// Package loadgen drives the workload of the Hiku evaluation (CCGrid 2025)
// against any controller that serves POST /run/<fn>, and computes the
// paper's metrics from what it saw.
//
// # Workload
//
// Closed-loop virtual users (VUs) run in stages (default 20, 50 and 100 VUs
// for 100 s each). A VU sends a request, waits for the answer, then thinks
// for a uniform ThinkMin–ThinkMax (default 0.1–1.0 s) before the next one; it
// starts no request after its stage has ended, draws no think time after an
// answer that arrives once the stage has ended, and the next stage begins
// once every VU of the current one has returned. Requests carry the
// FunctionBench payload of the function's base name.
//
// The functions are the 8 FunctionBench functions × Copies (default 5)
// copies, named "<function>-<copy>" with copy counted from 0
// ("gzip_compression-0" … "gzip_compression-4"), weighted by invocation
// counts of the Azure Functions 2021 trace (package workload). How a VU
// chooses among them is Config.MixMode.
//
// # Per-VU mixes (MixPerVU, the default)
//
// This is the reference workload, the k6 script evaluation/load_test.js of
// the Hiku repository (saman-akbari/hiku-scheduler), reproduced draw for
// draw. k6 runs the script's init code once per VU, so each VU has its own
// mix and its own random stream:
//
//   - randomSeed(SEED) seeds Math.random with SEED (Config.Seed), the same
//     in every VU; the VU's getRand is the sfc32 generator seeded with four
//     words (__VU·10000 + Math.random()·2³²) >>> 0.
//   - The VU shuffles the keys of the probability table (the 424 functions
//     of the trace, in hashed-id order: workload.AzureCountsByID) with
//     sort(() => getRand() − 0.5), keeps the first 8×Copies and names the
//     k-th of them benchmarks[k mod 8] + "-" + ⌊k/8⌋ (benchmarks in
//     alphabetical order). Its weights are the kept functions' invocation
//     counts, normalised.
//   - Each iteration draws getRand once and takes the first kept function,
//     in the table's key order, whose running sum of weights reaches the
//     draw; after the answer it sleeps getRand()·0.9 + 0.1 s (here
//     ThinkMin + getRand()·(ThinkMax − ThinkMin), the same with the default
//     bounds).
//
// Every VU uses the same 8×Copies names, each with its own weights, so over
// many VUs the names' popularity is much flatter than any one mix's: with
// 100 VUs and 5 copies no name has more than about 5% of the requests,
// where a single mix gives its top name 20–95% (TestPerVUFlatterThanShared).
// More functions are in use at once, so a scheduler sees more cold starts.
//
// What the reproduction relies on, read in the k6 and goja sources
// (grafana/k6 v0.50.0 and main; dop251/goja and its fork grafana/sobek):
// randomSeed(seed) sets the VU runtime's Math.random to
// rand.New(rand.NewSource(seed)).Float64 of Go's math/rand (v1), which
// loadgen calls too; Array.prototype.sort with a comparator is sort.Stable
// over a Less that calls the comparator once and reports a negative result
// (or −0), which loadgen runs through the same sort.Stable; VU ids (__VU)
// run from 1 to the most VUs any moment of the test plans, which for the
// script's consecutive scenarios with gracefulStop 0 is the largest stage.
// A VU keeps its JavaScript state, stream included, from scenario to
// scenario: k6 keeps initialised VUs in a FIFO pool, a scenario takes its
// VUs from the front and puts them back at the end when it ends. loadgen
// does the same with ids in order, so the default stages get ids 1–20,
// 21–70 and all 100; k6 initialises VUs concurrently, so its pool is in id
// order only roughly, and which ids a stage gets may differ a little. The
// script's scenarios stop with gracefulStop 0, interrupting the request in
// flight at a stage's end; loadgen lets it finish and records it, but, like
// the script, draws no think time after it. Report.Mix lists each name's
// mean weight over VU ids 1…max(VUs).
//
// Determinism: a VU's sequence of functions and think times over the run
// depends only on Seed and its id, whatever the latencies; how many of its
// requests fall in each stage does depend on latencies, so a VU that goes
// on in a later stage continues from wherever its stream got to.
//
// # Shared mix (MixShared)
//
// The mix loadgen used before per-VU mixes were the default: one mix for
// every VU (NewMix), weights a seeded sample, without replacement, of
// 8×Copies of the 424 counts, normalised. Every VU has its own random
// source seeded from (Seed, stage, VU index) and draws the function and the
// think time of its k-th request before sending it, so the same seed gives
// every scheduler the same sequence of functions and think times per stage
// and VU, whatever the latencies; how many requests a VU gets through in a
// stage does depend on latencies.
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
