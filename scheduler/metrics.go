package scheduler

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pullsched/pullsched/consumer"
)

// Decision outcomes, the values of the outcome label.
const (
	OutcomeWarm     = "warm"     // placed on a worker from the function's idle queue
	OutcomeFallback = "fallback" // placed by the fallback (least loaded, hash...)
	OutcomePending  = "pending"  // no capacity: queued
	OutcomeDeferred = "deferred" // held for a warm instance (pull-wait)
	OutcomeRejected = "rejected" // answered with a result instead (429, 503, 504)
)

// metrics are the scheduler's Prometheus metrics. They are updated from the
// loop goroutine only, except lag, which its sampler sets.
type metrics struct {
	decisions     *prometheus.CounterVec
	results       *prometheus.CounterVec
	pending       prometheus.Gauge
	held          prometheus.Gauge
	decisionSec   prometheus.Histogram
	assignSec     prometheus.Histogram
	inflight      *prometheus.GaugeVec
	workers       prometheus.Gauge
	duplicates    *prometheus.CounterVec
	timeouts      *prometheus.CounterVec
	unknown       prometheus.Counter
	produceErrors *prometheus.CounterVec
	lag           prometheus.Gauge
	rebuilt       prometheus.Counter
	ignored       *prometheus.CounterVec
	deafGaps      prometheus.Counter
	heardAge      prometheus.Gauge
	takenOver     *prometheus.CounterVec
	stranded      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "pullsched", "scheduler"
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "decisions_total", Help: "Placement decisions by policy and outcome (warm, fallback, pending, deferred, rejected)."},
			[]string{"policy", "outcome"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "results_total", Help: "Results the scheduler published itself, by reason (overloaded, no_workers, unavailable, timeout)."},
			[]string{"reason"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "held_arrivals", Help: "Arrivals held for a warm instance of their function (pull-wait)."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "pending_depth", Help: "Arrivals waiting in the pending queue."}),
		decisionSec: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "decision_seconds", Help: "Time the policy took to answer one placement question.",
			Buckets: prometheus.ExponentialBuckets(250e-9, 4, 10)}),
		assignSec: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "arrival_to_assignment_seconds", Help: "From an arrival's arrived stamp to the broker's acknowledgement of its assignment.",
			Buckets: prometheus.ExponentialBuckets(250e-6, 2, 16)}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "inflight", Help: "Assignments this replica has outstanding, per worker."}, []string{"worker"}),
		workers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "workers_in_rotation", Help: "Workers that are active, healthy and heard from within the heartbeat timeout."}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "duplicates_total", Help: "Arrivals seen again (redelivered) or handed back at a rebalance before their assignment was acknowledged (revoked_unacked)."},
			[]string{"kind"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "timeouts_total", Help: "Arrivals timed out, while pending or while assigned."}, []string{"where"}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "foreign_completions_total", Help: "Completions of assignments this replica does not hold (another replica's, timed out, or from before a rebalance)."}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "produce_errors_total", Help: "Failed produces, by kind (assignment, result)."}, []string{"kind"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "consumer_lag", Help: "Records of arrivals and worker-events not yet committed by the scheduler group (sampled)."}),
		rebuilt: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "idle_rebuilt_total", Help: "Idle entries restored from worker-events after partitions were assigned."}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "worker_records_ignored_total", Help: "Worker records not believed, by reason (no_bridge: neither a bridge's nor the admin API's; bridge_changed: another bridge claims a worker whose bridge is alive)."},
			[]string{"reason"}),
		deafGaps: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "workers_topic_gaps_total", Help: "Times the workers topic could not be read to its end for longer than the heartbeat timeout (the silence of such a gap is not held against workers)."}),
		heardAge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "workers_topic_heard_age_seconds", Help: "How long ago the workers topic was last known read to its end."}),
		takenOver: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "takeover_total", Help: "Arrivals read again after a rebalance that a previous owner had handled: finished (completion already seen; not run again) or adopted (assigned; waited for instead of placed again)."},
			[]string{"outcome"}),
		stranded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "stranded_total", Help: "Arrivals placed again because their assignment sat untaken on a worker whose bridge stopped."}),
	}
	for _, c := range []prometheus.Collector{m.decisions, m.results, m.pending, m.decisionSec, m.assignSec,
		m.inflight, m.workers, m.duplicates, m.timeouts, m.unknown, m.produceErrors, m.lag, m.rebuilt, m.held,
		m.ignored, m.deafGaps, m.heardAge, m.takenOver, m.stranded} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
	}
	return m, nil
}

// registerConsumerMetrics registers what the group consumer counts: its
// dead letters and the partitions it cannot make progress on.
func (s *Scheduler) registerConsumerMetrics() error {
	const ns, sub = "pullsched", "scheduler"
	cs := consumer.DeadLetterMetrics(ns, sub, func() consumer.DeadLetterCounts {
		n := s.workerDL.counts()
		if c := s.cons.Load(); c != nil {
			n = n.Add(c.Counts())
		}
		return n
	})
	cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "stuck_partitions",
		Help: "Partitions holding unfinished records that have finished none for StuckAfter (then /readyz fails)."},
		func() float64 { return float64(len(s.stuck())) }))
	for _, c := range cs {
		if err := s.reg.Register(c); err != nil {
			return fmt.Errorf("scheduler: metrics: %w", err)
		}
	}
	return nil
}

// stuck returns the partitions the group consumer has made no progress on
// for StuckAfter, nil before it runs or with the check disabled.
func (s *Scheduler) stuck() []consumer.Stalled {
	c := s.cons.Load()
	if c == nil || s.cfg.StuckAfter < 0 {
		return nil
	}
	return c.Stuck(time.Now(), s.cfg.StuckAfter)
}

// progress is the readiness check: an error naming the stuck partitions.
func (s *Scheduler) progress() error { return consumer.StuckError(s.stuck()) }
