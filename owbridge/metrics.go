package owbridge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pullsched/pullsched/consumer"
)

// registerMetrics exposes the counters, the book and the consumers'
// dead letters as pullsched_openwhisk_* metrics.
func (b *Bridge) registerMetrics(reg prometheus.Registerer) error {
	const ns, sub = "pullsched", "openwhisk"
	counter := func(name, help string, v func(Counts) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help},
			func() float64 { return float64(v(b.Counts())) })
	}
	cs := []prometheus.Collector{
		counter("arrivals_total", "Activations published as arrivals.", func(c Counts) int64 { return c.Arrivals }),
		counter("assigned_total", "Assignments handed to invokers.", func(c Counts) int64 { return c.Assigned }),
		counter("duplicates_total", "Re-delivered activations, assignments or acks not acted on again.", func(c Counts) int64 { return c.Duplicates }),
		counter("forwarded_acks_total", "Invoker acks forwarded to the controllers.", func(c Counts) int64 { return c.Forwarded }),
		counter("completions_total", "Completions published to worker-events.", func(c Counts) int64 { return c.Completions }),
		counter("synthetic_acks_total", "Acks the bridge wrote for activations pullsched answered without an invoker.", func(c Counts) int64 { return c.Synthetic }),
		counter("health_tests_total", "Controller health-test activations sent straight to an invoker.", func(c Counts) int64 { return c.HealthTests }),
		counter("unknown_acks_total", "Slot-freeing acks of activations the bridge did not know and could not name.", func(c Counts) int64 { return c.UnknownAcks }),
		counter("publish_errors_total", "Records the bridge could not write.", func(c Counts) int64 { return c.PublishErrors }),
		counter("unanswerable_total", "Scheduler answers of activations the bridge no longer knew (the controller's forced ack answers them).", func(c Counts) int64 { return c.Unanswerable }),
		counter("inferred_evictions_total", "Container evictions inferred from the model of the invokers' pools and published.", func(c Counts) int64 { return c.Evictions }),
		counter("health_tests_dropped_total", "Health tests dropped: no healthy invoker.", func(c Counts) int64 { return c.NoHealthyForHT }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "book_activations",
			Help: "Activations the bridge remembers (in flight, or answered within the grace period)."},
			func() float64 { return float64(b.book.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "live_invokers",
			Help: "Invokers heard from within the invoker timeout."},
			func() float64 { return float64(b.liveInvokers(b.now())) }),
	}
	cs = append(cs, consumer.DeadLetterMetrics(ns, sub, b.deadLetters)...)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// addConsumer keeps c for the metrics and the readiness check.
func (b *Bridge) addConsumer(c *consumer.Consumer) {
	b.mu.Lock()
	b.consumers = append(b.consumers, c)
	b.mu.Unlock()
}

func (b *Bridge) deadLetters() consumer.DeadLetterCounts {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sum consumer.DeadLetterCounts
	for _, c := range b.consumers {
		sum = sum.Add(c.Counts())
	}
	return sum
}

func (b *Bridge) liveInvokers(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, inv := range b.invokers {
		if b.live(inv, now) {
			n++
		}
	}
	return n
}

// progress fails /readyz naming the partitions of the bridge's consumers
// that hold unfinished records and finished none for StuckAfter.
func (b *Bridge) progress() error {
	if b.cfg.StuckAfter < 0 {
		return nil
	}
	b.mu.Lock()
	cs := append([]*consumer.Consumer(nil), b.consumers...)
	b.mu.Unlock()
	now := time.Now()
	var stalled []consumer.Stalled
	for _, c := range cs {
		stalled = append(stalled, c.Stuck(now, b.cfg.StuckAfter)...)
	}
	return consumer.StuckError(stalled)
}
