package loadgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/pullsched/pullsched/workload"
)

// Function is one function of the mix.
type Function struct {
	// Name is "<base>-<copy>", e.g. "gzip_compression-3".
	Name string `json:"name"`
	// Base is the FunctionBench function it copies.
	Base string `json:"base"`
	// Count is the Azure 2021 invocation count drawn for it in a shared mix;
	// 0 in the aggregate of per-VU mixes, where each VU draws its own.
	Count int64 `json:"count"`
	// Weight is its probability of being picked; the weights of a mix sum
	// to 1. In the aggregate of per-VU mixes it is the mean of the VUs'
	// weights.
	Weight float64 `json:"weight"`
	// Payload is the JSON body sent with every request.
	Payload json.RawMessage `json:"payload"`
}

// Mix is the weighted set of functions requests are drawn from. It is
// immutable once built, so VUs share it.
type Mix struct {
	fns []Function
	cum []float64 // cum[i] = sum of weights of fns[0..i]
}

// NewMix builds the mix for a seed: the 8 FunctionBench functions × copies,
// weighted by a seeded sample without replacement of 8×copies of the 424
// Azure 2021 invocation counts, normalised. Functions are ordered by base
// name, then copy; the i-th gets the i-th count drawn.
func NewMix(seed int64, copies int) (*Mix, error) {
	fns, nbase, err := baseFunctions(copies)
	if err != nil {
		return nil, err
	}
	counts := workload.AzureCounts()
	n := len(fns)
	if copies < 1 || n > len(counts) {
		return nil, fmt.Errorf("%w: copies %d not in [1, %d]", ErrConfig, copies, len(counts)/nbase)
	}
	sample := SampleCounts(counts, n, seed)
	var total int64
	for _, c := range sample {
		total += c
	}
	m := &Mix{fns: fns, cum: make([]float64, n)}
	for i := range m.fns {
		m.fns[i].Count = sample[i]
		m.fns[i].Weight = float64(sample[i]) / float64(total)
	}
	var sum float64
	for i, f := range m.fns {
		sum += f.Weight
		m.cum[i] = sum
	}
	m.cum[n-1] = 1 // guard the last bucket against rounding
	return m, nil
}

// SampleCounts draws n of counts without replacement, in draw order, with a
// random source seeded by seed: a partial Fisher–Yates shuffle of a copy.
func SampleCounts(counts []int64, n int, seed int64) []int64 {
	n = min(n, len(counts))
	r := rand.New(rand.NewPCG(uint64(seed), 0x6d6978)) // "mix"
	pool := append([]int64(nil), counts...)
	for i := 0; i < n; i++ {
		j := i + r.IntN(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:n]
}

// Functions returns a copy of the mix's functions.
func (m *Mix) Functions() []Function {
	out := make([]Function, len(m.fns))
	copy(out, m.fns)
	return out
}

// Pick returns the function whose cumulative-weight bucket holds u, a
// uniform draw in [0, 1).
func (m *Mix) Pick(u float64) *Function {
	i := sort.SearchFloat64s(m.cum, u)
	// SearchFloat64s finds the first cum >= u; u == cum[i] belongs to the
	// next bucket, since buckets are [cum[i-1], cum[i]).
	for i < len(m.cum)-1 && m.cum[i] <= u {
		i++
	}
	return &m.fns[min(i, len(m.fns)-1)]
}
