package policy

import (
	"fmt"
	mrand "math/rand"
	"testing"
	"time"
)

// BenchmarkPick measures one decision plus one completion per op for every
// policy over cluster and catalogue sizes. Function names follow a Zipf
// distribution (s = 1.1) so that popular functions are warm; W decisions
// stay in flight (on average one per worker), each completed W ops after
// it was made, so loads and idle queues are not trivially empty.
func BenchmarkPick(b *testing.B) {
	for _, name := range Names() {
		b.Run("policy="+name, func(b *testing.B) {
			for _, w := range []int{10, 100, 1000} {
				b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
					for _, f := range []int{100, 1000, 10000} {
						b.Run(fmt.Sprintf("functions=%d", f), func(b *testing.B) {
							benchPick(b, name, w, f)
						})
					}
				})
			}
		})
	}
}

func benchPick(b *testing.B, name string, workers, functions int) {
	p, err := New(name, Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < workers; i++ {
		p.WorkerJoined(WorkerInfo{ID: fmt.Sprintf("worker-%04d", i)})
	}
	seq := benchSequence(functions)
	const seqLen = len(benchSeq{})
	type out struct {
		worker, fn string
		warm, ok   bool
	}
	window := make([]out, workers)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	op := func(i int) bool {
		fn := seq[i&(seqLen-1)]
		d := p.Pick(Request{Function: fn, Now: now.Add(time.Duration(i) * time.Microsecond)})
		slot := &window[i%workers]
		if slot.ok {
			p.Completed(Completion{Worker: slot.worker, Function: slot.fn, OK: true, WarmHint: slot.warm,
				Now: now.Add(time.Duration(i) * time.Microsecond)})
		}
		*slot = out{d.Worker, fn, d.Warm, d.Code == Placed}
		return d.Warm
	}
	// Fill the window so every timed op completes an earlier decision.
	for i := 0; i < workers; i++ {
		op(i)
	}
	warm := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if op(workers + i) {
			warm++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(warm)/float64(b.N), "warm/op")
}

type benchSeq [1 << 15]string

// benchSeqs caches one Zipf sequence per catalogue size, so that the
// repeated rounds of a benchmark do not pay for building it again.
var benchSeqs = map[int]*benchSeq{}

// benchSequence returns a fixed Zipf (s = 1.1) sequence of function names
// drawn from a catalogue of n functions.
func benchSequence(n int) *benchSeq {
	if s, ok := benchSeqs[n]; ok {
		return s
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("function-%05d", i)
	}
	z := mrand.NewZipf(mrand.New(mrand.NewSource(1)), 1.1, 1, uint64(n-1))
	s := new(benchSeq)
	for i := range s {
		s[i] = names[z.Uint64()]
	}
	benchSeqs[n] = s
	return s
}
