package eval

import (
	"fmt"
	"image/color"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/pullsched/pullsched/loadgen"
)

// plotLatencyCDF draws the latency CDF of every contender in scenario sc
// for its first seed, and the ideal one (of the baseline's requests),
// latency on a log axis.
func plotLatencyCDF(r *Report, sc Scenario, path string) error {
	p := plot.New()
	p.Title.Text = "Latency CDF (model time)"
	if len(r.Seeds) > 0 {
		p.Title.Text = fmt.Sprintf("Latency CDF, scenario %s, seed %d (model time)", sc.Name, r.Seeds[0])
	}
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of successful requests"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	drawn := 0
	add := func(label string, cdf []loadgen.CDFPoint, i int, style func(*plotter.Line)) error {
		if len(cdf) == 0 {
			return nil
		}
		pts := make(plotter.XYs, 0, len(cdf))
		for _, c := range cdf {
			pts = append(pts, plotter.XY{X: math.Max(c.LatencyMS, 0.01), Y: c.Fraction})
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("eval: latency plot: %w", err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		if style != nil {
			style(line)
		}
		p.Add(line)
		p.Legend.Add(label, line)
		drawn++
		return nil
	}
	if len(r.Seeds) > 0 {
		idx := r.index()
		for i, c := range r.Contenders {
			if j, ok := idx[runKey{sc.Name, r.Seeds[0], c.Label}]; ok {
				if err := add(c.Label, r.Runs[j].CDF, i, nil); err != nil {
					return err
				}
			}
		}
		if j, ok := idx[runKey{sc.Name, r.Seeds[0], r.Baseline()}]; ok {
			ideal := loadgen.CDF(IdealLatencies(r.Runs[j]), 200)
			err := add("ideal", ideal, 0, func(l *plotter.Line) {
				l.Color = color.Gray{Y: 100}
				l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			})
			if err != nil {
				return err
			}
		}
	}
	if drawn == 0 {
		// A log axis needs a positive range even with nothing to draw.
		p.X.Min, p.X.Max = 1, 10
	}
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("eval: latency plot: %w", err)
	}
	return nil
}

// rankedShares returns each worker's share of run's successful requests in
// percent, busiest first.
func rankedShares(run *loadgen.Report) []float64 {
	counts := make([]float64, 0, len(run.Overall.Workers))
	var total float64
	for _, c := range run.Overall.Workers {
		counts = append(counts, float64(c))
		total += float64(c)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(counts)))
	for j := range counts {
		counts[j] = 100 * counts[j] / total
	}
	return counts
}

// meanShares averages ranked shares rank by rank; a run with fewer workers
// counts 0 for the ranks it lacks.
func meanShares(shares [][]float64) []float64 {
	n := 0
	for _, s := range shares {
		n = max(n, len(s))
	}
	out := make([]float64, n)
	for _, s := range shares {
		for j, v := range s {
			out[j] += v / float64(len(shares))
		}
	}
	return out
}

// plotWorkerLoad draws, for every contender in scenario sc, each worker's
// share of the successful requests, workers ranked from busiest (worker ids
// differ between clusters, ranks compare), averaged over the seeds.
func plotWorkerLoad(r *Report, sc Scenario, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Share of requests per worker, scenario %s (ranked, busiest first; mean over %d seeds)", sc.Name, len(r.Seeds))
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Label.Text = "worker rank"
	p.Y.Label.Text = "share of requests (%)"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	idx := r.index()
	n := len(r.Contenders)
	maxWorkers := 0
	w := vg.Points(max(4, 40/float64(max(n, 1))))
	for i, c := range r.Contenders {
		var shares [][]float64
		for _, seed := range r.Seeds {
			if j, ok := idx[runKey{sc.Name, seed, c.Label}]; ok {
				if s := rankedShares(r.Runs[j]); len(s) > 0 {
					shares = append(shares, s)
				}
			}
		}
		vals := plotter.Values(meanShares(shares))
		maxWorkers = max(maxWorkers, len(vals))
		if len(vals) == 0 {
			continue
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("eval: worker plot: %w", err)
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(float64(i)-float64(n-1)/2)
		p.Add(bars)
		p.Legend.Add(c.Label, bars)
	}
	if maxWorkers > 0 {
		names := make([]string, maxWorkers)
		for j := range names {
			names[j] = fmt.Sprint(j + 1)
		}
		p.NominalX(names...)
		// An even share, for reference.
		even := 100 / float64(maxWorkers)
		ref, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: even}, {X: float64(maxWorkers) - 0.5, Y: even}})
		if err == nil {
			ref.Color = color.Gray{Y: 100}
			ref.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(ref)
			p.Legend.Add("even share", ref)
		}
	}
	p.Y.Min = 0
	p.Y.Max *= 1.25 // room for the legend
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("eval: worker plot: %w", err)
	}
	return nil
}

// logTicks labels 1, 2 and 5 times each power of ten in range, with minor
// ticks at the other integers times it.
type logTicks struct{}

// Ticks returns the ticks of [lo, hi].
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	if !(lo > 0) || !(hi > lo) {
		return out
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		p := math.Pow(10, e)
		for m := 1.0; m < 10; m++ {
			v := m * p
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			out = append(out, t)
		}
	}
	return out
}
