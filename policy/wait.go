package policy

import "time"

// pull-wait: late binding for cold starts. Pull starts a request cold as
// soon as its function has no idle instance, even when an instance of it
// is about to finish; the cold start then costs the request the sandbox's
// creation and, on a worker short of memory, evicts another function's
// idle sandbox, whose next request starts cold in turn. pull-wait defers
// such a request while the wait it expects is shorter than the cold
// start's extra time, and the scheduler asks again when an instance frees
// (it is then warm) or when the wait is over (it then falls back as pull).

// waitAlpha is the weight of the newest sample in the per-function moving
// averages of warm and cold durations: about the last ten matter.
const waitAlpha = 0.2

// fnStat is what pull-wait knows of one function: its instances running
// (placed, not yet completed) and the moving averages of the durations of
// its warm and cold runs, in nanoseconds.
type fnStat struct {
	busy       int32
	warm, cold float64
	nw, nc     uint32
}

// newPullWait is pull that waits for warm instances.
func newPullWait(cfg Config) *pull {
	p := newPull(cfg)
	p.wait, p.patience = true, cfg.WaitFactor
	return p
}

// completed counts a run of the function as finished and learns its
// duration.
func (s *fnStat) completed(c Completion) {
	if s.busy > 0 {
		s.busy--
	}
	if !c.OK || c.Duration <= 0 {
		return
	}
	x := float64(c.Duration)
	switch c.Start {
	case StartWarm:
		s.warm, s.nw = ewma(s.warm, x, waitAlpha, s.nw == 0), s.nw+1
	case StartCold:
		s.cold, s.nc = ewma(s.cold, x, waitAlpha, s.nc == 0), s.nc+1
	}
}

// waitFor decides whether a request should wait for one of the function's
// busy instances, given that waiting requests already wait for them, and
// for how long at most. With b instances busy, each about half way through
// a run of the average warm duration W, the (k+1)-th waiter expects to wait
// about W (k+1)/(b+1) (the (k+1)-th of b uniform remaining times). It waits
// when that is less than patience times the cold start's extra time, the
// average cold duration C less W; a cold start also evicts another
// function's sandbox on a worker short of memory, which is what a patience
// above 1 accounts for. It waits at most C - W: an instance that has not
// freed by then is running slow (shared cores, a queue for memory on its
// worker), and waiting longer only adds to the tail. Until both averages
// are known nothing waits.
func (s *fnStat) waitFor(waiting int, patience float64) (time.Duration, bool) {
	b := int(s.busy)
	if b <= waiting || s.nw == 0 || s.nc == 0 {
		return 0, false
	}
	extra := s.cold - s.warm
	if extra <= 0 || s.warm*float64(waiting+1)/float64(b+1) >= patience*extra {
		return 0, false
	}
	return time.Duration(extra), true
}
