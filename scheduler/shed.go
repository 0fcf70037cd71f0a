package scheduler

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/topics"
)

// DefaultShedLag is Config.ShedLag's default: off, chosen by measurement
// (docs/BENCHMARKS.md, "Overload"). With the scheduler the bottleneck (its
// CPU capped, the rest of the chain idle enough), shedding at 500ms cut
// goodput at 2,000/s offered from 1,488-1,784/s to 836-1,203/s in four
// back-to-back pairs (embedded and Apache Kafka), and made the 429s slower
// (p50 0.8-5s against 1-139ms): an arrival in Kafka costs the scheduler
// nearly as much to refuse as to place, so refusing it spends the
// bottleneck itself, and a scheduler kept reading small batches does less
// per second than one that reads late in big ones; the controller's
// admission limit (on the requests waiting at once, which rise the moment
// the chain falls behind) refuses at the door for nothing. Nor is the
// scheduler's signal earlier: a request's answer reaches the controller
// when the scheduler reads it plus the short way back. Shedding stays for
// deployments whose scheduler lags for reasons other than its own CPU.
const DefaultShedLag time.Duration = 0

// shedGrace is how long after this scheduler (re)started reading arrivals
// — partitions assigned at start-up or a rebalance, or the workers topic
// heard again after a deaf spell — arrivals read late are still placed,
// unless one was read within the shed lag before: that backlog is of the
// scheduler's own absence (a takeover, a broker outage), not of a load it
// cannot keep up with, and reading it at full speed takes far less. A
// scheduler started under a lasting overload sheds after it.
const shedGrace = 5 * time.Second

// shedder is the scheduler's own admission control. When the scheduler,
// not the ingress, is the bottleneck, arrivals wait in Kafka, and the
// ingress learns of that only from answers that come as late as the
// queue is long. Here the wait is seen at once: an arrival read more than
// ShedLag after it arrived at the ingress (its Arrived stamp, else its
// record's timestamp) is answered at once with a result of reason
// overloaded (429 with Retry-After at the controller) instead of being
// placed. Answering costs the scheduler one produce and nothing
// downstream; it bounds the wait of what it places, but refusing costs
// nearly what placing does, so it is off by default (DefaultShedLag).
//
// It does not shed while the workers topic cannot be read (decisions wait
// for it: see holding) or no worker is in rotation (the no-workers rules
// answer), nor within shedGrace of (re)starting to read (see there), nor
// arrivals a previous owner already placed (takeover), nor once shedding
// proved futile (see shedWindow): the stamps are the ingress's clock, and a
// scheduler whose clock is ahead by more than the bound would otherwise
// refuse everything. Held arrivals (pull-wait), pending ones and retried
// assignments are the policy's and the capacity's waits, bounded by their
// deadlines; the controller's admission rule sees those.
type shedder struct {
	armed bool      // an arrival was read within the lag, or shedGrace passed, since from
	from  time.Time // when reading (re)started; zero: never
	// A spell of shedding is logged when it starts and once no arrival
	// was shed for spellQuiet (arrivals of partitions read at different
	// lags alternate at its edges).
	shedding bool
	lastShed time.Time
	spellAt  time.Time // when the current spell started
	spell    int       // arrivals shed in the current spell
	spellLag time.Duration

	// The futility check (see shedWindow): the smallest lag read in the
	// current window, when the window started, and whether shedding is
	// off because it did not bring that under the bound.
	winStart time.Time
	winMin   time.Duration
	futile   bool

	shed prometheus.Counter
	lag  prometheus.Histogram
}

func newShedder() shedder {
	const ns, sub = "pullsched", "scheduler"
	return shedder{
		shed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "shed_total", Help: "Arrivals answered 429 overloaded because they were read more than the shed lag after they arrived at the ingress (the scheduler is behind)."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "arrival_read_lag_seconds", Help: "From an arrival's arrived stamp (or its record's timestamp) to when this scheduler read it.",
			Buckets: prometheus.ExponentialBuckets(500e-6, 2, 16)}),
	}
}

// register adds the shedder's metrics to reg.
func (s *shedder) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.shed, s.lag} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("scheduler: register metrics: %w", err)
		}
	}
	return nil
}

// restart notes that the scheduler (re)starts reading arrivals at now.
func (s *shedder) restart(now time.Time) {
	s.armed, s.from = false, now
}

// readLag is how long after it arrived at the ingress a, carried by rec,
// is read at now; ok is false when neither stamp is known. A stamp ahead
// of now (another clock) counts as no lag.
func readLag(a *topics.Arrival, rec *kgo.Record, now time.Time) (lag time.Duration, ok bool) {
	at := a.Arrived
	if at.IsZero() && rec != nil {
		at = rec.Timestamp
	}
	if at.IsZero() {
		return 0, false
	}
	return max(now.Sub(at), 0), true
}

// shedLate answers j overloaded and reports true when it was read too late
// to be placed (see shedder). The caller has not entered j in jobs.
func (st *state) shedLate(j *job, rec *kgo.Record, now time.Time) bool {
	s := &st.shed
	lag, ok := readLag(j.a, rec, now)
	if !ok {
		return false
	}
	s.lag.Observe(lag.Seconds())
	bound := st.cfg.ShedLag
	if bound > 0 {
		st.shedWindow(now, lag, bound)
	}
	switch {
	case bound <= 0 || s.futile:
		return false
	case lag <= bound:
		s.armed = true
		st.endSpell(now)
		return false
	case st.deaf(now):
		s.restart(now) // its backlog is read once the topic is heard again
		return false
	case !s.armed && now.Sub(s.from) < shedGrace:
		return false
	case !st.anyInRotation():
		return false
	}
	s.armed = true
	if !s.shedding {
		s.shedding, s.spell, s.spellAt = true, 0, now
		st.log.Warn().Dur("lag", lag).Dur("shed_lag", bound).
			Msg("arrivals read later than the shed lag after they arrived: answering them 429 overloaded")
	}
	s.spell++
	s.spellLag = max(s.spellLag, lag)
	s.lastShed = now
	s.shed.Inc()
	st.reject(j, topics.ReasonOverloaded, fmt.Sprintf(
		"the scheduler is behind: read %s after it arrived, over its shed lag of %s; retry later",
		lag.Round(time.Millisecond), bound))
	return true
}

// shedWindow is the window of the futility check: shedding that went on
// for a whole window in which no arrival was read within the bound has
// not let the scheduler catch up, which it does when answering is what it
// needed time for; either the lag is not the scheduler's (it cannot even
// read faster, or this clock is ahead of the ingress's by more than the
// bound) or nothing sheddable causes it. Shedding then stops (the
// controller's admission rule still sees the wait) until a window reads
// some arrival within the bound again.
const shedWindow = 2 * time.Second

// shedWindow feeds the futility check with one arrival read lag late.
func (st *state) shedWindow(now time.Time, lag, bound time.Duration) {
	s := &st.shed
	if s.winStart.IsZero() {
		s.winStart, s.winMin = now, lag
		return
	}
	if now.Sub(s.winStart) < shedWindow {
		s.winMin = min(s.winMin, lag)
		return
	}
	switch {
	case s.futile && s.winMin <= bound:
		s.futile = false
		st.log.Info().Dur("min_lag", s.winMin).Msg("arrivals read within the shed lag again; shedding may resume")
	case !s.futile && s.shedding && s.spellAt.Before(s.winStart) && s.winMin > bound:
		s.futile = true
		st.log.Warn().Dur("min_lag", s.winMin).Dur("shed_lag", bound).Dur("window", shedWindow).
			Msg("shedding did not bring any arrival's lag under the shed lag for a whole window (the scheduler cannot read faster, or its clock is ahead of the ingress's): not shedding until one is")
		st.endSpellNow()
	}
	s.winStart, s.winMin = now, lag
}

// spellQuiet is how long no arrival is shed before a spell is over.
const spellQuiet = time.Second

// endSpell logs the end of a spell of shedding, if one was on and no
// arrival was shed for spellQuiet.
func (st *state) endSpell(now time.Time) {
	s := &st.shed
	if !s.shedding || now.Sub(s.lastShed) < spellQuiet {
		return
	}
	st.endSpellNow()
}

// endSpellNow logs the end of the current spell of shedding.
func (st *state) endSpellNow() {
	s := &st.shed
	st.log.Info().Int("shed", s.spell).Dur("max_lag", s.spellLag).Msg("arrivals read within the shed lag again; placing them")
	s.shedding, s.spell, s.spellLag = false, 0, 0
}

// anyInRotation reports whether some worker receives new work.
func (st *state) anyInRotation() bool {
	for _, w := range st.workers {
		if w.rot == rotActive {
			return true
		}
	}
	return false
}
