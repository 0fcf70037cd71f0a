package loadgen

import (
	"math"
	"slices"
	"sort"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, an ascending slice: the value at rank ⌈p/100·n⌉. It returns 0 for
// an empty slice; p <= 0 gives the minimum.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// Mean returns the arithmetic mean of xs, 0 for none.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// CV returns the coefficient of variation of xs: the population standard
// deviation divided by the mean. It is 0 when xs is empty or its mean is 0.
func CV(xs []float64) float64 {
	m := Mean(xs)
	if m == 0 {
		return 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss/float64(len(xs))) / m
}

// Assignment is one request placed on a worker, for LoadImbalance.
type Assignment struct {
	// At is when the request was sent, as an offset from the start of the
	// run in model time.
	At time.Duration
	// Worker is the worker that served it.
	Worker string
}

// LoadImbalance is the Hiku paper's load-imbalance metric: for each whole
// second (of At) in which at least one request was assigned, the CV of the
// number of requests each worker got in that second — over every worker in
// workers, 0 for those that got none (a worker in an assignment but not in
// workers is added) — averaged over those seconds. It returns the average
// and the number of seconds counted; (0, 0) when there is no assignment.
func LoadImbalance(as []Assignment, workers []string) (cv float64, seconds int) {
	idx := make(map[string]int, len(workers))
	for _, w := range workers {
		if _, ok := idx[w]; !ok {
			idx[w] = len(idx)
		}
	}
	for _, a := range as {
		if _, ok := idx[a.Worker]; !ok {
			idx[a.Worker] = len(idx)
		}
	}
	perSecond := map[int64][]float64{}
	for _, a := range as {
		s := int64(a.At / time.Second)
		if a.At < 0 {
			s = int64(math.Floor(a.At.Seconds()))
		}
		row := perSecond[s]
		if row == nil {
			row = make([]float64, len(idx))
			perSecond[s] = row
		}
		row[idx[a.Worker]]++
	}
	if len(perSecond) == 0 {
		return 0, 0
	}
	var sum float64
	for _, row := range perSecond {
		sum += CV(row)
	}
	return sum / float64(len(perSecond)), len(perSecond)
}

// CDFPoint is one point of an empirical latency distribution.
type CDFPoint struct {
	// LatencyMS is a latency in milliseconds (model time).
	LatencyMS float64 `json:"latency_ms"`
	// Fraction is the fraction of successful requests at or below it.
	Fraction float64 `json:"fraction"`
}

// CDF returns at most points points of the empirical CDF of sorted (an
// ascending slice), evenly spaced in rank, always including the maximum.
func CDF(sorted []float64, points int) []CDFPoint {
	n := len(sorted)
	if n == 0 || points < 1 {
		return nil
	}
	if points > n {
		points = n
	}
	out := make([]CDFPoint, 0, points)
	for i := 1; i <= points; i++ {
		rank := int(math.Ceil(float64(i) * float64(n) / float64(points)))
		out = append(out, CDFPoint{LatencyMS: sorted[rank-1], Fraction: float64(rank) / float64(n)})
	}
	return out
}

// sortedCopy returns xs sorted ascending, leaving xs alone.
func sortedCopy(xs []float64) []float64 {
	out := slices.Clone(xs)
	sort.Float64s(out)
	return out
}
