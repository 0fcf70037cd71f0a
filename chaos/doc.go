// Package chaos is pullsched's chaos suite: it starts the parts as real
// processes on loopback against a running Kafka (two schedulers, the
// controller, four simulated workers, each with its invoker sidecar),
// drives open-loop load through the controller and injects one fault per
// scenario — SIGKILL and restart of each kind of part, a broker stop and
// start, oversized and malformed records on every consumed topic,
// heartbeats stamped by skewed clocks, a forged worker record — and checks
// what pullsched promises (docs/DESIGN.md, issue 13):
//
//   - every request is answered by its deadline plus a slack (no hangs) and
//     none after its deadline;
//   - extra executions of one request stay within the duplicate budget
//     (0.1% of the accepted requests);
//   - answers are 200 and fast again within the scenario's recovery bound;
//   - once the fault is over, no part is stuck: every /readyz answers 200,
//     no part reports stuck partitions, and load is served.
//
// Executions are counted exactly: each request carries a nonce in its JSON
// body, and the suite puts a transparent counting proxy between each
// sidecar and its worker, so a request that ran twice is seen as such
// whatever the parts' own metrics say. The parts' duplicate and
// dead-letter counters are reported beside it.
//
// The pure parts — the scenario table (Scenarios), the accounting of one
// scenario's samples (Tally) and the report (Report.Markdown, JSON) — are
// unit-tested; Run needs a broker and a pullsched binary and is what
// `pullsched chaos` and scripts/ci-chaos.sh run.
package chaos
