// Package invokerbridge connects the assignment topics to OpenLambda
// workers (`pullsched invoker`).
//
// A sidecar bridge serves one worker: it consumes invoker.<worker> in the
// group <prefix>invoker.<worker>, calls POST <worker-url>/run/<fn> for each
// assignment with at most Capacity calls at once (the partition pauses while
// they are all busy) and the assignment's deadline as the call's deadline,
// then publishes a Completion to worker-events and a Result to
// results.<reply>; only once both are acknowledged, or PublishTimeout
// has passed, is the assignment's offset committed. A worker that refuses or errors yields a failed
// completion and a 502 result (reason worker_failed), one that does not
// answer in time a 504 (reason timeout), one that answers 4xx/5xx a failed
// completion and a result carrying its status and body. Re-delivered
// assignments are dropped by activation id, those a predecessor answered
// too: given a partition, the bridge first reads the worker's completions
// of the last PredecessorWindow from worker-events.
//
// The bridge heartbeats the worker's record on the workers topic every
// HeartbeatInterval (capacity, calls in flight, health from GET /status),
// registers it on start and marks it draining on shutdown, after finishing
// its calls in flight. Its HTTP server accepts OpenLambda's eviction notices
// (POST /destroySandbox/<fn> with {"host": "<host>:<port>"}) and publishes
// them as Eviction events, and serves /metrics, /healthz and /readyz.
//
// A pool bridge (Config.Pool) follows the workers topic and runs the same
// machinery for every worker the admin API added, starting a runner when a
// worker is added and draining and stopping it when it is removed.
//
// Nothing in the bridge is specific to the simulated worker of package
// workersim except reading its optional X-Cold-Start header.
package invokerbridge
