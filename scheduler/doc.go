// Package scheduler is the policy loop at the centre of pullsched. It
// consumes arrivals and worker-events in one consumer group (co-partitioned
// by function, so one replica owns a function's arrivals and its idle
// state), follows the workers topic in full, asks a policy where each
// arrival goes, publishes the assignment to invoker.<worker> and keeps the
// books: outstanding assignments with their timeouts, in-flight work per
// worker, and a bounded pending queue.
//
// One goroutine owns all of that state. The consumer hands it batches and
// rebalance events through a channel and waits until the batch is decided
// and its records are handed to the producer; acknowledgements come back
// through a non-blocking inbox. An arrival's offset is released for commit
// only once its assignment, or the result that rejects it, has been
// acknowledged by the broker, so a crash loses nothing; what a crash can
// duplicate is what was acknowledged but not yet committed.
package scheduler
