package loadgen

import (
	"fmt"
	"math"
	randv1 "math/rand"
	"slices"
	"sort"
	"time"

	"github.com/pullsched/pullsched/workload"
)

// This file reproduces the per-VU function mixes of the Hiku evaluation's
// k6 script (evaluation/load_test.js of saman-akbari/hiku-scheduler) draw
// for draw; see the package documentation for the semantics and the
// sources of the facts about k6 it relies on.

// sfc32 is the script's getRand: the Small Fast Counting generator with
// 32-bit words, whose output is the 32-bit word t scaled to [0, 1).
type sfc32 struct{ a, b, c, d uint32 }

// next advances the state and returns t / 2³², in [0, 1 − 2⁻³²].
func (s *sfc32) next() float64 {
	t := s.a + s.b + s.d
	s.d++
	s.a = s.b ^ s.b>>9
	s.b = s.c + s.c<<3
	s.c = (s.c<<21 | s.c>>11) + t
	return float64(t) / (1 << 32)
}

// maxSFC32 is the largest value sfc32.next returns.
const maxSFC32 = float64(math.MaxUint32) / (1 << 32)

// newVUStream returns the getRand of the VU with k6 id vu (__VU, from 1)
// in a run seeded with seed. The script calls randomSeed(SEED), which gives
// every VU's Math.random the same math/rand (v1) Float64 stream seeded with
// SEED, then seeds sfc32 with four words (vu·10000 + Math.random()·2³²)
// >>> 0, drawn in argument order.
func newVUStream(seed int64, vu int) *sfc32 {
	mathRandom := randv1.New(randv1.NewSource(seed)).Float64
	word := func() uint32 {
		// float64(...) keeps the compiler from fusing the multiply into the
		// add (the multiply by 2³² is exact anyway). x is non-negative and
		// far below 2⁶⁴, so >>> 0 is truncation, then mod 2³².
		x := float64(vu*10000) + float64(mathRandom()*(1<<32))
		return uint32(uint64(x))
	}
	return &sfc32{word(), word(), word(), word()}
}

// jsRandomSort is Array.prototype.sort with the comparator
// () => getRand() − 0.5 as k6's JavaScript engine (goja, and its fork
// sobek) runs it: sort.Stable over a Less that calls the comparator once and
// reports whether its result is below zero (or −0, which u − 0.5 never is).
// The comparator ignores the elements, so only the number and order of
// Less calls matter, and sort.Stable fixes both.
type jsRandomSort struct {
	keys []int
	rng  *sfc32
}

func (s jsRandomSort) Len() int           { return len(s.keys) }
func (s jsRandomSort) Less(_, _ int) bool { return s.rng.next()-0.5 < 0 }
func (s jsRandomSort) Swap(i, j int)      { s.keys[i], s.keys[j] = s.keys[j], s.keys[i] }

// vuMix is one VU's function mix in per-VU mode and its random stream,
// which the VU keeps for the whole run, across stages.
type vuMix struct {
	id  int
	rng *sfc32
	fns []Function // the run's functions, shared by every VU; read only
	// In the key order of the probability table (ascending function id):
	// fn[i] indexes fns, weight[i] is its normalised probability and cum[i]
	// the running sum of weight[0..i], accumulated as the script does.
	fn     []int
	weight []float64
	cum    []float64
	// thinkMin and thinkMax bound the think time (model time).
	thinkMin, thinkMax time.Duration
}

// newVUMix builds the mix of VU id as the script's init code does:
// shuffle the function ids with the comparator sort, keep the first
// len(fns) as the sample, and give sample position k the name
// benchmarks[k mod 8] + "-" + ⌊k/8⌋. The probabilities are
// countsByID[i] / workload.AzureTotalInvocations, normalised over the sample
// in key order. fns must be ordered by base function, then copy (as NewMix
// orders them), for nbase base functions.
func newVUMix(seed int64, id int, countsByID []int64, fns []Function, nbase int) *vuMix {
	rng := newVUStream(seed, id)
	keys := make([]int, len(countsByID))
	for i := range keys {
		keys[i] = i
	}
	sort.Stable(jsRandomSort{keys: keys, rng: rng})
	copies := len(fns) / nbase
	posOf := make(map[int]int, len(fns)) // function id → sample position
	for k, fid := range keys[:len(fns)] {
		posOf[fid] = k
	}
	m := &vuMix{id: id, rng: rng, fns: fns}
	var total float64
	for fid, n := range countsByID {
		if k, ok := posOf[fid]; ok {
			m.fn = append(m.fn, (k%nbase)*copies+k/nbase)
			m.weight = append(m.weight, float64(n)/workload.AzureTotalInvocations)
			total += m.weight[len(m.weight)-1]
		}
	}
	var acc float64
	for i := range m.weight {
		m.weight[i] /= total
		acc += m.weight[i]
		m.cum = append(m.cum, acc)
	}
	return m
}

// pick returns the index in fns of the first function, in key order, whose
// running sum reaches u (the script's randomValue <= accumulatedProb). If
// none does, which rounding could only cause for u within a few ulps of 1
// and sfc32 never returns more than 1 − 2⁻³² (TestVUMixCoversEveryDraw
// checks the sums), it returns the last one; the script would get undefined
// and its iteration would throw before sending anything.
func (m *vuMix) pick(u float64) int {
	for i, c := range m.cum {
		if u <= c {
			return m.fn[i]
		}
	}
	return m.fn[len(m.fn)-1]
}

// function draws the function of the VU's next request.
func (m *vuMix) function() *Function { return &m.fns[m.pick(m.rng.next())] }

// think draws the think time after an answer: getRand()·0.9 + 0.1 s with
// the default bounds.
func (m *vuMix) think() time.Duration { return thinkTime(m.thinkMin, m.thinkMax, m.rng.next()) }

// thinkTime maps a uniform draw u in [0, 1) to a think time in [lo, hi).
func thinkTime(lo, hi time.Duration, u float64) time.Duration {
	return lo + time.Duration(u*float64(hi-lo))
}

// baseFunctions returns the 8 FunctionBench functions × copies, ordered by
// base name, then copy, with no counts or weights.
func baseFunctions(copies int) ([]Function, int, error) {
	profiles := workload.FunctionBench()
	if profiles == nil {
		return nil, 0, fmt.Errorf("loadgen: workload figures: %w", workload.Err())
	}
	fns := make([]Function, 0, len(profiles)*max(copies, 0))
	for _, p := range profiles {
		for c := range copies {
			fns = append(fns, Function{Name: fmt.Sprintf("%s-%d", p.Name, c), Base: p.Name, Payload: p.Payload})
		}
	}
	return fns, len(profiles), nil
}

// newVUMixes builds the mixes of VU ids 1…vus for a run in per-VU mode.
func newVUMixes(seed int64, copies, vus int, thinkMin, thinkMax time.Duration) ([]*vuMix, error) {
	fns, nbase, err := baseFunctions(copies)
	if err != nil {
		return nil, err
	}
	counts := workload.AzureCountsByID()
	if copies < 1 || len(fns) > len(counts) {
		return nil, fmt.Errorf("%w: copies %d not in [1, %d]", ErrConfig, copies, len(counts)/nbase)
	}
	out := make([]*vuMix, vus)
	for i := range out {
		out[i] = newVUMix(seed, i+1, counts, fns, nbase)
		out[i].thinkMin, out[i].thinkMax = thinkMin, thinkMax
	}
	return out, nil
}

// aggregate returns the run's functions with, as Weight, the mean of the
// VUs' weights: the expected share of each function when every VU sends
// the same number of requests. Count is 0: no single count was drawn.
func aggregate(mixes []*vuMix) []Function {
	if len(mixes) == 0 {
		return nil
	}
	out := slices.Clone(mixes[0].fns)
	for _, m := range mixes {
		for i, w := range m.weight {
			out[m.fn[i]].Weight += w / float64(len(mixes))
		}
	}
	return out
}

// vuIDs assigns k6 VU ids to the VUs of each stage as k6 does for
// constant-vus scenarios that run one after another with gracefulStop 0,
// like the script's: k6 initialises max(VUs) VUs with ids 1…max into a FIFO
// pool, a scenario takes its VUs from the front of the pool and each VU
// goes back to the end when the scenario ends. With 20, 50 and 100 VUs the
// stages get ids 1–20, 21–70, and then all 100.
func vuIDs(stages []Stage) [][]int {
	n := 0
	for _, s := range stages {
		n = max(n, s.VUs)
	}
	pool := make([]int, n)
	for i := range pool {
		pool[i] = i + 1
	}
	out := make([][]int, len(stages))
	for i, s := range stages {
		out[i] = slices.Clone(pool[:s.VUs])
		pool = append(slices.Clone(pool[s.VUs:]), out[i]...)
	}
	return out
}
