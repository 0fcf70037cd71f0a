package eval

import (
	"math"
	"sort"
	"time"

	"github.com/pullsched/pullsched/loadgen"
	"github.com/pullsched/pullsched/workload"
)

// Ideal is the latency the requests of a run would have had if each ran
// warm on an otherwise idle core: its function's FunctionBench warm time.
type Ideal struct {
	// Requests counts the requests it is over: every request sent whose
	// function has a FunctionBench profile.
	Requests int
	// MeanMS, P50MS and P99MS are in ms of model time; nearest-rank.
	MeanMS, P50MS, P99MS float64
}

// IdealLatencies returns the ideal latency (the FunctionBench warm time of
// the function called, "<base>-<copy>" taking its base's, as
// workload.ProfileFor does) of every request run sent,
// successful or not, in ms of model time, sorted ascending. Requests for a
// function without a profile are left out.
func IdealLatencies(run *loadgen.Report) []float64 {
	if run == nil {
		return nil
	}
	warm := map[string]float64{}
	for _, p := range workload.FunctionBench() {
		warm[p.Name] = float64(p.Warm) / float64(time.Millisecond)
	}
	out := make([]float64, 0, len(run.Records))
	for _, r := range run.Records {
		if ms, ok := warm[workload.BaseName(r.Function)]; ok {
			out = append(out, ms)
		}
	}
	sort.Float64s(out)
	return out
}

// IdealOf summarises IdealLatencies(run).
func IdealOf(run *loadgen.Report) Ideal {
	lat := IdealLatencies(run)
	return Ideal{Requests: len(lat), MeanMS: loadgen.Mean(lat), P50MS: loadgen.Percentile(lat, 50), P99MS: loadgen.Percentile(lat, 99)}
}

// GapClosed returns (base − x) / (base − ideal): the share of the baseline's
// distance to the ideal latency that x closes (1: x is ideal, 0: x is the
// baseline, negative: x is worse), and false when base equals ideal.
func GapClosed(x, base, ideal float64) (float64, bool) {
	if base == ideal {
		return 0, false
	}
	return (base - x) / (base - ideal), true
}

// Stat is a figure over seeds.
type Stat struct {
	// Mean is the arithmetic mean over the seeds where the figure is defined.
	Mean float64 `json:"mean"`
	// SD is the sample standard deviation (n−1), 0 with fewer than 2 values.
	SD float64 `json:"sd"`
	// Min and Max bound the values.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// N counts the values; 0 means the figure is undefined for every seed
	// (e.g. a difference to a baseline of 0).
	N int `json:"n"`
}

// StatOf returns the Stat of xs.
func StatOf(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	s := Stat{Mean: loadgen.Mean(xs), Min: xs[0], Max: xs[0], N: len(xs)}
	var ss float64
	for _, x := range xs {
		s.Min, s.Max = math.Min(s.Min, x), math.Max(s.Max, x)
		ss += (x - s.Mean) * (x - s.Mean)
	}
	if len(xs) > 1 {
		s.SD = math.Sqrt(ss / float64(len(xs)-1))
	}
	return s
}

// Summary is one contender's figures in one scenario over the seeds, as
// report.json's "summary" holds them. Rates and relative differences are
// fractions; latencies in ms of model time.
type Summary struct {
	Scenario string `json:"scenario"`
	MemoryMB int    `json:"memory_mb"`
	// Policy is the contender's label.
	Policy   string `json:"policy"`
	Capacity int    `json:"capacity"`
	// Baseline is the label of the contender the relative figures are to.
	Baseline string `json:"baseline"`
	// Seeds are the seeds this contender ran with in the scenario.
	Seeds []int64 `json:"seeds"`

	Requests      Stat `json:"requests"`
	MeanLatencyMS Stat `json:"mean_latency_ms"`
	P50LatencyMS  Stat `json:"p50_latency_ms"`
	P99LatencyMS  Stat `json:"p99_latency_ms"`
	RPS           Stat `json:"rps"`
	ColdStartRate Stat `json:"cold_start_rate"`
	LoadCV        Stat `json:"load_cv"`
	Errors        Stat `json:"errors"`

	// MeanLatencyVsBaseline and ColdStartRateVsBaseline are the relative
	// differences (x − base) / base, computed per seed, then aggregated.
	MeanLatencyVsBaseline   Stat `json:"mean_latency_vs_baseline"`
	ColdStartRateVsBaseline Stat `json:"cold_start_rate_vs_baseline"`
	// GapClosed is GapClosed of the mean latency per seed, aggregated.
	GapClosed Stat `json:"gap_closed"`

	// IdealMeanLatencyMS, IdealP50LatencyMS and IdealP99LatencyMS are the
	// ideal latencies of the baseline's requests (see Ideal) per seed,
	// aggregated; the same in every contender of a scenario.
	IdealMeanLatencyMS Stat `json:"ideal_mean_latency_ms"`
	IdealP50LatencyMS  Stat `json:"ideal_p50_latency_ms"`
	IdealP99LatencyMS  Stat `json:"ideal_p99_latency_ms"`
}

// runKey names one run.
type runKey struct {
	scenario string
	seed     int64
	label    string
}

// index maps each run to its position in r.Rows.
func (r *Report) index() map[runKey]int {
	m := make(map[runKey]int, len(r.Rows))
	for i, row := range r.Rows {
		m[runKey{row.Scenario, row.Seed, row.Policy}] = i
	}
	return m
}

// finish fills in every row's ideal figures, from its scenario and seed's
// baseline run, and computes the summary. Runs missing (an evaluation cut
// short) are left out of it.
func (r *Report) finish() {
	if len(r.Contenders) == 0 {
		return
	}
	idx := r.index()
	base := r.Contenders[baseline(r.Contenders)].Label
	r.Summary = nil
	for _, sc := range r.Scenarios {
		for _, k := range r.Seeds {
			b, ok := idx[runKey{sc.Name, k, base}]
			if !ok || b >= len(r.Runs) {
				continue
			}
			id := IdealOf(r.Runs[b])
			for _, c := range r.Contenders {
				if i, ok := idx[runKey{sc.Name, k, c.Label}]; ok {
					r.Rows[i].IdealMeanLatencyMS, r.Rows[i].IdealP50LatencyMS, r.Rows[i].IdealP99LatencyMS = id.MeanMS, id.P50MS, id.P99MS
				}
			}
		}
		for _, c := range r.Contenders {
			s := Summary{Scenario: sc.Name, MemoryMB: sc.MemoryMB, Policy: c.Label, Capacity: c.Capacity, Baseline: base}
			var v struct{ req, mean, p50, p99, rps, cold, cv, errs, dMean, dCold, gap, iMean, iP50, iP99 []float64 }
			for _, k := range r.Seeds {
				i, ok := idx[runKey{sc.Name, k, c.Label}]
				if !ok {
					continue
				}
				x := r.Rows[i]
				s.Seeds = append(s.Seeds, k)
				v.req = append(v.req, float64(x.Requests))
				v.mean = append(v.mean, x.MeanLatencyMS)
				v.p50 = append(v.p50, x.P50LatencyMS)
				v.p99 = append(v.p99, x.P99LatencyMS)
				v.rps = append(v.rps, x.RPS)
				v.cold = append(v.cold, x.ColdStartRate)
				v.cv = append(v.cv, x.LoadCV)
				v.errs = append(v.errs, float64(x.Errors))
				bi, ok := idx[runKey{sc.Name, k, base}]
				if !ok {
					continue
				}
				b := r.Rows[bi]
				if d, ok := Relative(x.MeanLatencyMS, b.MeanLatencyMS); ok {
					v.dMean = append(v.dMean, d)
				}
				if d, ok := Relative(x.ColdStartRate, b.ColdStartRate); ok {
					v.dCold = append(v.dCold, d)
				}
				if g, ok := GapClosed(x.MeanLatencyMS, b.MeanLatencyMS, b.IdealMeanLatencyMS); ok {
					v.gap = append(v.gap, g)
				}
				v.iMean = append(v.iMean, b.IdealMeanLatencyMS)
				v.iP50 = append(v.iP50, b.IdealP50LatencyMS)
				v.iP99 = append(v.iP99, b.IdealP99LatencyMS)
			}
			if len(s.Seeds) == 0 {
				continue
			}
			s.Requests, s.MeanLatencyMS, s.P50LatencyMS, s.P99LatencyMS = StatOf(v.req), StatOf(v.mean), StatOf(v.p50), StatOf(v.p99)
			s.RPS, s.ColdStartRate, s.LoadCV, s.Errors = StatOf(v.rps), StatOf(v.cold), StatOf(v.cv), StatOf(v.errs)
			s.MeanLatencyVsBaseline, s.ColdStartRateVsBaseline, s.GapClosed = StatOf(v.dMean), StatOf(v.dCold), StatOf(v.gap)
			s.IdealMeanLatencyMS, s.IdealP50LatencyMS, s.IdealP99LatencyMS = StatOf(v.iMean), StatOf(v.iP50), StatOf(v.iP99)
			r.Summary = append(r.Summary, s)
		}
	}
}
