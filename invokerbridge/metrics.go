package invokerbridge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pullsched/pullsched/consumer"
)

// metrics are the bridge's Prometheus series, all labelled by worker.
type metrics struct {
	calls      *prometheus.CounterVec   // worker, status (the result's HTTP status)
	starts     *prometheus.CounterVec   // worker, start (cold, warm, unknown)
	duration   *prometheus.HistogramVec // worker
	inflight   *prometheus.GaugeVec     // worker
	duplicates *prometheus.CounterVec   // worker
	learnedDup *prometheus.CounterVec   // worker: duplicates a predecessor answered
	heartbeats *prometheus.CounterVec   // worker, healthy (true, false)
	hbErrors   *prometheus.CounterVec   // worker
	evictions  *prometheus.CounterVec   // worker
	notices    *prometheus.CounterVec   // outcome (accepted, malformed, unknown_host, publish_failed)
	pubErrors  *prometheus.CounterVec   // kind (completion, result)
	lost       *prometheus.CounterVec   // worker: calls whose answer could not be published
}

func newMetrics(reg prometheus.Registerer, b *Bridge) (*metrics, error) {
	const ns, sub = "pullsched", "invoker"
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "calls_total",
			Help: "Calls to workers by the HTTP status of the result they produced (502/504 for failures and timeouts)."},
			[]string{"worker", "status"}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "starts_total",
			Help: "Successful calls by start kind as the worker told it (X-Cold-Start)."}, []string{"worker", "start"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "call_duration_seconds",
			Help:    "Wall time of calls to workers, from request to the end of the answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, []string{"worker"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "inflight",
			Help: "Calls running now."}, []string{"worker"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "duplicates_total",
			Help: "Re-delivered assignments dropped by activation id."}, []string{"worker"}),
		learnedDup: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "predecessor_duplicates_total",
			Help: "Of duplicates_total, assignments dropped because a predecessor's completion for them was on worker-events."},
			[]string{"worker"}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "heartbeats_total",
			Help: "Worker records written, by the health they reported."}, []string{"worker", "healthy"}),
		hbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "heartbeat_errors_total",
			Help: "Worker records that could not be published."}, []string{"worker"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "evictions_total",
			Help: "Eviction events published from notices."}, []string{"worker"}),
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "notices_total",
			Help: "Eviction notices received, by outcome."}, []string{"outcome"}),
		pubErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "publish_errors_total",
			Help: "Failed publish attempts of completions and results (retried)."}, []string{"kind"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "unacknowledged_total",
			Help: "Calls whose completion could not be published in time; their assignment is finished without it (not run again)."},
			[]string{"worker"}),
	}
	cs := []prometheus.Collector{m.calls, m.starts, m.duration, m.inflight, m.duplicates, m.learnedDup, m.heartbeats,
		m.hbErrors, m.evictions, m.notices, m.pubErrors, m.lost,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "stuck_partitions",
			Help: "Assignment partitions holding records that are not running and have finished none for StuckAfter (then /readyz fails)."},
			func() float64 { return float64(len(b.stuck())) })}
	cs = append(cs, consumer.DeadLetterMetrics(ns, sub, b.deadLetters)...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// deadLetters sums the dead-letter counters of every runner's consumer,
// those gone included, so the total never decreases.
func (b *Bridge) deadLetters() consumer.DeadLetterCounts {
	b.mu.Lock()
	defer b.mu.Unlock()
	sum := b.retired
	for _, r := range b.runners {
		if c := r.cons.Load(); c != nil {
			sum = sum.Add(c.Counts())
		}
	}
	return sum
}

// retire moves the counters of r's consumer into the bridge's total as
// the consumer goes.
func (b *Bridge) retire(r *runner) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := r.cons.Swap(nil); c != nil {
		b.retired = b.retired.Add(c.Counts())
	}
}

// stuck returns the assignment partitions that hold records beyond the
// calls running on them and have finished none for StuckAfter: records
// that wait for a slot, or that no call will ever finish. The partition's
// topic names the worker.
func (b *Bridge) stuck() []consumer.Stalled {
	if b.cfg.StuckAfter < 0 {
		return nil
	}
	b.mu.Lock()
	rs := make([]*runner, 0, len(b.runners))
	for _, r := range b.runners {
		rs = append(rs, r)
	}
	b.mu.Unlock()
	now := time.Now()
	var out []consumer.Stalled
	for _, r := range rs {
		c := r.cons.Load()
		if c == nil {
			continue
		}
		running := int(r.inflight.Load())
		for _, s := range c.Stuck(now, b.cfg.StuckAfter) {
			if s.Outstanding > running {
				out = append(out, s)
			}
		}
	}
	return out
}

// progress is the readiness check: an error naming the stuck partitions.
func (b *Bridge) progress() error { return consumer.StuckError(b.stuck()) }
