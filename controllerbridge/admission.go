package controllerbridge

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultAdmissionTarget is the default Config.AdmissionTarget, chosen by
// measurement (docs/BENCHMARKS.md, "The full chain"; pullsched bench chain
// --processes on the shared 2-core machine). 250 ms shed 40 of 3,000
// requests at 200/s on Apache Kafka with its data on disk, whose stalls
// kept every answer of a 100 ms window over it although the chain was far
// from full; 500 ms shed nothing at any rate the chain held, on Kafka
// (200-2,000/s, stalls up to 1.1 s) or embedded (up to 4,000/s), and keeps
// what an admitted request waits under overload well inside any timeout.
const DefaultAdmissionTarget = 500 * time.Millisecond

// DefaultAdmissionInterval is the default Config.AdmissionInterval.
const DefaultAdmissionInterval = 100 * time.Millisecond

// admissionMinLimit is the lowest the limit is ever cut to: a chain that
// takes fewer requests at once is stalled, not overloaded, and shedding
// more would not help it.
const admissionMinLimit = 16

// admission decides whether the ingress takes a new request. It watches
// what the chain adds to each answered blocking request — its time from
// arrival to result less the function's own duration: the waits in Kafka,
// in the scheduler's pending queue, in the bridges — so it sees overload
// wherever it is (the ingress, the scheduler, the broker, the workers), and
// keeps a limit on the requests waiting at once:
//
//   - an interval whose smallest added time exceeds target (every request
//     answered in it queued that long: a standing queue, not a burst) sets
//     the limit to the chain's recent peak rate of answers times target:
//     by Little's law, that many requests waiting wait about target at the
//     rate the chain can serve. A cut at most halves the limit (or, with
//     none, the peak of requests waiting in the interval) and never goes
//     below admissionMinLimit: an interval of few answers (a pause, a
//     stall) must not starve the chain, and while the answers still report
//     the queue from before a cut (they lag behind it by the queue's
//     length) the limit settles at the rate-based value instead of
//     collapsing;
//   - an interval in which the scheduler answered some request overloaded
//     (it read the arrival later than its shed lag, scheduler/shed.go, or
//     found its pending queue full) is cut the same way: the scheduler saw the queue at once, while the
//     answers that would show it here come as late as the queue is long.
//     Such answers are not counted in the rate the chain serves: counting
//     them would keep the limit up while the scheduler spends itself
//     refusing what the limit let in;
//   - an interval whose smallest added time is within target raises the
//     limit by a tenth, and lifts it once it is twice the peak waiting.
//
// A request that finds the waiting requests at the limit is refused at once
// (429 with Retry-After) instead of joining a queue it would wait in past
// its timeout. It holds no clock and no goroutine: callers pass the time.
type admission struct {
	target, interval time.Duration
	off              bool

	mu       sync.Mutex
	limit    int // 0: none
	winStart time.Time
	winMin   time.Duration
	winN     int
	winPeak  int
	winShed  int // answers of the interval the scheduler shed
	refused  int64
	cuts     int64
	shed     int64   // answers the scheduler shed, in all
	peakRate float64 // answers per second, decayed (see roll)
}

// newAdmission returns the admission rule; a negative target turns it off.
func newAdmission(target, interval time.Duration) *admission {
	return &admission{target: target, interval: interval, off: target < 0}
}

// roll closes the interval when it is over and adjusts the limit;
// waiting is the requests waiting now. a.mu is held.
func (a *admission) roll(now time.Time, waiting int) {
	if a.winStart.IsZero() {
		a.winStart, a.winPeak = now, waiting
		return
	}
	if now.Sub(a.winStart) < a.interval {
		return
	}
	// The peak rate decays by a twentieth per interval: it remembers what
	// the chain served before the limit held it back, so the limit cannot
	// spiral down with the rate it allows, yet it follows a chain that
	// lastingly slowed within a few seconds.
	rate := float64(a.winN) / now.Sub(a.winStart).Seconds()
	a.peakRate = max(rate, a.peakRate*0.95)
	switch {
	case a.winShed > 0 || a.winN > 0 && a.winMin > a.target:
		// The chain's recent peak rate times target; at most halving.
		l := int(a.peakRate * a.target.Seconds())
		from := a.limit
		if from == 0 {
			from = a.winPeak
		}
		a.limit = max(l, from/2, admissionMinLimit)
		a.cuts++
	case a.winN > 0 && a.limit > 0:
		a.limit += max(1, a.limit/10)
		if a.limit >= 2*a.winPeak+admissionMinLimit {
			a.limit = 0
		}
	}
	a.winStart, a.winMin, a.winN, a.winPeak, a.winShed = now, 0, 0, waiting, 0
}

// observe records the time the chain added to one answered request.
func (a *admission) observe(now time.Time, added time.Duration, waiting int) {
	if a.off {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now, waiting)
	if a.winN == 0 || added < a.winMin {
		a.winMin = added
	}
	a.winN++
}

// shedAnswer records an answer of the scheduler's own admission control:
// a request it refused because it read it too late or its pending queue
// was full (see admission).
func (a *admission) shedAnswer(now time.Time, waiting int) {
	if a.off {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now, waiting)
	a.winShed++
	a.shed++
}

// admit says whether a new request may enter while waiting requests wait.
func (a *admission) admit(now time.Time, waiting int) bool {
	if a.off {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.roll(now, waiting)
	a.winPeak = max(a.winPeak, waiting)
	if a.limit > 0 && waiting >= a.limit {
		a.refused++
		return false
	}
	return true
}

// state is the limit (0: none), the requests refused and the cuts so far.
func (a *admission) state() (limit int, refused, cuts int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.limit, a.refused, a.cuts
}

// register adds the admission metrics to reg.
func (a *admission) register(reg *prometheus.Registry) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pullsched_controller_admission_limit",
			Help: "Requests allowed to wait at once by the admission rule (0: no limit); beyond it /run answers 429.",
		}, func() float64 { l, _, _ := a.state(); return float64(l) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pullsched_controller_admission_refused_total",
			Help: "Requests answered 429 because the chain was behind (the added time of every answer in an interval over the admission target).",
		}, func() float64 { _, r, _ := a.state(); return float64(r) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pullsched_controller_admission_scheduler_shed_total",
			Help: "Requests the scheduler answered overloaded (read later than its shed lag, or its pending queue full); each cuts the limit of its interval.",
		}, func() float64 { a.mu.Lock(); defer a.mu.Unlock(); return float64(a.shed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "pullsched_controller_admission_cuts_total",
			Help: "Times the admission limit was cut.",
		}, func() float64 { _, _, c := a.state(); return float64(c) }),
	)
}
