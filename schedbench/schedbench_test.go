package schedbench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkSchedulerLoop drives b.N arrivals through an embedded broker, one
// scheduler and eight no-op bridges, as fast as a 4,096 window allows.
// Set PULLSCHED_BENCH_BROKERS=host:port,... to use a real Kafka instead.
func BenchmarkSchedulerLoop(b *testing.B) {
	ctx := context.Background()
	cfg := Config{}
	if s := os.Getenv("PULLSCHED_BENCH_BROKERS"); s != "" {
		cfg.Brokers = strings.Split(s, ",")
	}
	rig, err := newBenchRig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer rig.close()
	if err := rig.drive(ctx, rig.cfg.Warmup, 0, 0); err != nil {
		b.Fatal(err)
	}
	rig.reset()
	b.ReportAllocs()
	b.ResetTimer()
	if err := rig.drive(ctx, b.N, 0, 0); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	res := rig.result()
	b.ReportMetric(res.PerSecond, "decisions/s")
	b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
	if res.Duplicate != 0 || res.Rejected != 0 {
		b.Fatalf("duplicates %d, rejected %d", res.Duplicate, res.Rejected)
	}
}

// TestBenchSmoke runs Bench briefly at a fixed rate, checking that every
// arrival is assigned once; the numbers it logs are not asserted.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the 1 s benchmark smoke run")
	}
	res, err := Run(context.Background(), Config{Rate: 500, Duration: time.Second, Warmup: 50, Workers: 2, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Assigned != res.Arrivals || res.Arrivals == 0 || res.Duplicate != 0 || res.Rejected != 0 {
		t.Fatalf("bench result: %v", res)
	}
}
