package scheduler

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSchedulerLoop drives b.N arrivals through an embedded broker, one
// scheduler and eight no-op bridges, as fast as a 4,096 window allows.
// Set PULLSCHED_BENCH_BROKERS=host:port,... to use a real Kafka instead.
func BenchmarkSchedulerLoop(b *testing.B) {
	ctx := context.Background()
	cfg := BenchConfig{}
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
		t.Skip("short")
	}
	res, err := Bench(context.Background(), BenchConfig{Rate: 500, Duration: time.Second, Warmup: 50, Workers: 2, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
	if res.Assigned != res.Arrivals || res.Arrivals == 0 || res.Duplicate != 0 || res.Rejected != 0 {
		t.Fatalf("bench result: %v", res)
	}
}

// TestBenchReport runs Bench as PULLSCHED_BENCH_RATE (arrivals/s, 0 = max)
// and PULLSCHED_BENCH_DURATION say, on PULLSCHED_BENCH_BROKERS or an
// embedded broker, and logs the result. It is skipped unless the rate is
// set: it is how the figures in docs/BENCHMARKS.md were taken.
// PULLSCHED_BENCH_LINGER and PULLSCHED_BENCH_DRIVER_LINGER set
// BenchConfig.Linger and DriverLinger.
func TestBenchReport(t *testing.T) {
	rs := os.Getenv("PULLSCHED_BENCH_RATE")
	if rs == "" {
		t.Skip("set PULLSCHED_BENCH_RATE")
	}
	rate, err := strconv.ParseFloat(rs, 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg := BenchConfig{Rate: rate, Duration: 10 * time.Second}
	if s := os.Getenv("PULLSCHED_BENCH_DURATION"); s != "" {
		if cfg.Duration, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	if s := os.Getenv("PULLSCHED_BENCH_BROKERS"); s != "" {
		cfg.Brokers = strings.Split(s, ",")
	}
	for env, d := range map[string]*time.Duration{"PULLSCHED_BENCH_LINGER": &cfg.Linger, "PULLSCHED_BENCH_DRIVER_LINGER": &cfg.DriverLinger} {
		if s := os.Getenv(env); s != "" {
			if *d, err = time.ParseDuration(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	res, err := Bench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res)
}
