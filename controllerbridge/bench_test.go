package controllerbridge

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pullsched/pullsched/topics"
)

// BenchmarkBook measures the bookkeeping of one blocking request: register,
// deliver its result, receive it — with the store at various fill levels.
func BenchmarkBook(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("store=%d", size), func(b *testing.B) {
			bk := newBook(time.Minute, size, DefaultMaxActivationBytes, 10_000)
			now := time.Unix(1000, 0)
			ids := make([]string, 4096)
			for i := range ids {
				ids[i] = topics.NewID()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				id := ids[i%len(ids)] + strconv.Itoa(i)
				ch, _ := bk.register(id, true, now, now.Add(time.Second))
				bk.deliver(&topics.Result{ID: id, Status: 200}, now)
				<-ch
			}
		})
	}
}

// BenchmarkRunRoundTrip measures a blocking /run through the embedded
// broker and back, with a fake scheduler answering at once, with
// par×GOMAXPROCS concurrent clients. cpu-us/op is the CPU time of the
// whole process (client, controller, broker, fake scheduler) per request.
func BenchmarkRunRoundTrip(b *testing.B) {
	for _, par := range []int{1, 16} {
		b.Run(fmt.Sprintf("par=%d", par), func(b *testing.B) { benchRoundTrip(b, par, nil) })
	}
}

// BenchmarkRunRoundTripLinger is BenchmarkRunRoundTrip with 16×GOMAXPROCS
// clients and the arrivals producer's Linger at 0 (the default) and above:
// what batching arrivals saves in CPU per request, and what it adds to
// latency.
func BenchmarkRunRoundTripLinger(b *testing.B) {
	for _, linger := range []time.Duration{0, 200 * time.Microsecond, time.Millisecond} {
		b.Run(fmt.Sprintf("linger=%s", linger), func(b *testing.B) {
			benchRoundTrip(b, 16, func(c *Config) { c.Linger = linger })
		})
	}
}

// benchRoundTrip drives blocking /run requests from par×GOMAXPROCS clients
// through a controller (its config changed by mutate, if given) and a fake
// scheduler that answers at once, reporting CPU per request.
func benchRoundTrip(b *testing.B, par int, mutate func(*Config)) {
	h := start(b, mutate)
	startFake(b, h, echo())
	var failed atomic.Int64
	b.SetParallelism(par)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, _, err := do("POST", h.base+"/run/bench", "", `{"n":1}`)
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
