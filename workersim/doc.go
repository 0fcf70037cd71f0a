// Package workersim is an OpenLambda-compatible worker that simulates
// sandboxes in virtual time, so that a small machine can host a realistic
// cluster of workers for tests, demos and the evaluation. Simulated work is
// waiting on timers, never burning CPU.
//
// # HTTP API (as OpenLambda's worker)
//
//   - /run/<fn> (GET or POST): run function fn. The path is split as
//     OpenLambda splits it: one leading and one trailing "/" are trimmed, the
//     rest is split on "/", and exactly two segments are required; anything
//     else gets 500 "expected invocation format: /run/<lambda-name>". A POST
//     body must be JSON (an empty POST body is not, as in OpenLambda's Python
//     runtime): otherwise 400 `bad POST data: "<body>"`. A GET without a body
//     is allowed. Other methods get 405. Bodies over Config.MaxBodyBytes get
//     413. The answer is 200 with headers X-Cold-Start: 1|0 and X-Worker:
//     <name> and a JSON body {"function", "worker", "cold", "duration_ms",
//     "echo"} where echo is the request payload (null without one).
//     When too many requests wait for memory the answer is 429 "lambda
//     function queue is full", OpenLambda's back-off answer.
//   - GET /status: "ready\n" (503 once the simulator is closed).
//   - GET /stats: JSON counters (see Stats).
//
// # Model
//
// A function "<base>-<copy>" takes the FunctionBench profile of <base> (see
// package workload); unknown functions take Config.Default. Every concurrent
// invocation of a function holds its own sandbox. An idle sandbox of the
// function is reused (warm, most recently used first); otherwise a sandbox is
// created (cold) and the request pays the profile's cold-minus-warm extra
// before executing. Execution is the profile's warm latency of CPU work,
// shared between Config.Cores CPUs by processor sharing: with n runnable
// invocations on c cores each progresses at min(1, c/n) speed. The scheduler
// is event-driven: whenever the runnable set changes it charges the elapsed
// time to every runnable invocation and re-arms a single timer for the next
// finish.
//
// The cold-start extra is modelled as a wait (sandbox creation and imports in
// SOCK are dominated by kernel and I/O work that the FunctionBench figures do
// not split out), so it does not compete for the cores; Config.ColdCPU makes
// it CPU work instead.
//
// Memory is a pool of MemoryMB/SandboxMB sandbox slots. Busy, initialising and
// idle sandboxes all hold a slot. Like OpenLambda's evictor, the simulator
// keeps a FreeGoal fraction of the slots free by evicting idle sandboxes,
// least recently used first, whenever free slots fall under the goal; running
// sandboxes are never evicted. A request that needs a new sandbox when no
// slot is free and none is idle waits, first come first served, as
// OpenLambda's memory pool blocks its creators; it is served as soon as a
// sandbox is released. Optionally, an idle sandbox is evicted after
// Config.KeepAlive.
//
// Every eviction posts a notice, asynchronously from a bounded queue, to
// <NotifyURL>/destroySandbox/<fn> with body {"host": "<advertised
// host:port>"}, the notice OpenLambda as patched for Hiku sends. A
// Config.SilentEvictions fraction of evictions is not announced, as real
// OpenLambda loses some. Notices never block requests.
//
// A client that goes away abandons its invocation: a sandbox still being
// created is discarded (it was never announced, so no notice), a running one
// is released as idle.
//
// Config.TimeScale maps model time to wall time (0.1 runs ten times faster);
// durations reported in answers and Stats are model time. Execution times
// carry seeded uniform jitter of ±Config.Jitter.
package workersim
