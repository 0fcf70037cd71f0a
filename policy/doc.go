// Package policy holds pullsched's scheduling logic: placement policies
// (pull-based as in Hiku, consistent hashing with bounded loads, plain
// consistent hashing, least connections, power of two choices, random) and
// the pending-queue disciplines used when no worker has room.
//
// The package is pure. A Policy receives state changes as method calls
// (worker joined, completion, eviction, load reported by other replicas) and
// answers placement questions with a Decision; the only clock it sees is the
// time carried by those calls. It performs no I/O, logs nothing and starts no
// goroutines. Given the same Config (including the seed) and the same
// sequence of calls, a policy makes the same decisions.
//
// Nothing in this package is safe for concurrent use: the scheduler loop that
// owns a Policy, a Pending queue or an Estimator must serialise its calls.
package policy
