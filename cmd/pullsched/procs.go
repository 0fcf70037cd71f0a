package main

import (
	"flag"
	"runtime"
)

// DefaultInvokerProcs is the GOMAXPROCS of an invoker bridge unless
// --gomaxprocs or the GOMAXPROCS variable says otherwise. A sidecar runs
// beside its worker, whose functions need the cores, and it only waits on
// the network: with one P it spends less CPU per call, because Go's idle
// Ps no longer spin looking for work and hand-offs between its goroutines
// need no thread wake-up. Measured with `pullsched bench chain --processes`
// (docs/BENCHMARKS.md, "One P per part"): the five sidecars' CPU per
// request 0.244 → 0.197 ms at 1,500/s, and the chain held 6,500/s instead
// of 6,000/s.
const DefaultInvokerProcs = 1

// partProcs lists the commands that run a part, which take --gomaxprocs,
// with its default (0: Go's).
var partProcs = map[string]int{
	"dev": 0, "broker": 0, "scheduler": 0, "controller": 0, "openwhisk": 0, "workersim": 0,
	"invoker": DefaultInvokerProcs,
}

// addProcsFlag gives every command a --gomaxprocs flag; def is the
// command's own default (0: Go's, the CPUs the process may use).
func addProcsFlag(fs *flag.FlagSet, c *common, def int) {
	fs.IntVar(&c.procs, "gomaxprocs", def, "how many OS threads run Go code at once (GOMAXPROCS); 0: Go's default, the CPUs available. The GOMAXPROCS variable wins over the default but not over this flag")
}

// applyProcs sets GOMAXPROCS from --gomaxprocs: when the flag (or its
// PULLSCHED_ variable or config key) was given, or when it holds the
// command's non-zero default and the GOMAXPROCS variable is unset. It
// returns the GOMAXPROCS in effect.
func applyProcs(c *common, explicit bool, getenv func(string) string) int {
	if c.procs > 0 && (explicit || getenv("GOMAXPROCS") == "") {
		runtime.GOMAXPROCS(c.procs)
	}
	return runtime.GOMAXPROCS(0)
}
