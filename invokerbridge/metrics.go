package invokerbridge

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the bridge's Prometheus series, all labelled by worker.
type metrics struct {
	calls      *prometheus.CounterVec   // worker, status (the result's HTTP status)
	starts     *prometheus.CounterVec   // worker, start (cold, warm, unknown)
	duration   *prometheus.HistogramVec // worker
	inflight   *prometheus.GaugeVec     // worker
	duplicates *prometheus.CounterVec   // worker
	heartbeats *prometheus.CounterVec   // worker, healthy (true, false)
	hbErrors   *prometheus.CounterVec   // worker
	evictions  *prometheus.CounterVec   // worker
	notices    *prometheus.CounterVec   // outcome (accepted, malformed, unknown_host, publish_failed)
	pubErrors  *prometheus.CounterVec   // kind (completion, result)
	lost       *prometheus.CounterVec   // worker: calls whose answer could not be published
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
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
	for _, c := range []prometheus.Collector{m.calls, m.starts, m.duration, m.inflight, m.duplicates, m.heartbeats,
		m.hbErrors, m.evictions, m.notices, m.pubErrors, m.lost} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
