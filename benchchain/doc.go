// Package benchchain measures pullsched's whole chain as a user feels it:
// HTTP in at the controller, arrival, decision, assignment, invoker bridge,
// worker call, completion and result, HTTP out. It starts no-op workers
// (OpenLambda's POST /run/<fn>, answered 200 {} at once), the chain (an
// embedded broker or given brokers, one scheduler, the controller, one
// invoker sidecar per worker; in this process or as pullsched processes),
// drives fixed rates with its own open-loop client and reports, per rate,
// the achieved rate, latency percentiles measured from each request's
// intended send time (free of coordinated omission), answers by status,
// and the CPU each part spent per request. A direct target sends the same
// load to one no-op worker, the baseline the chain adds to.
//
// It is a benchmark rig, not a production part: `pullsched bench chain`
// wires it.
package benchchain
