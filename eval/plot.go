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
)

// plotLatencyCDF draws every policy's latency CDF, latency on a log axis.
func plotLatencyCDF(r *Report, path string) error {
	p := plot.New()
	p.Title.Text = "Latency CDF (model time)"
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of successful requests"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	drawn := 0
	for i, run := range r.Runs {
		if len(run.CDF) == 0 {
			continue
		}
		pts := make(plotter.XYs, 0, len(run.CDF))
		for _, c := range run.CDF {
			pts = append(pts, plotter.XY{X: math.Max(c.LatencyMS, 0.01), Y: c.Fraction})
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("eval: latency plot: %w", err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(r.Policies[i].Policy, line)
		drawn++
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

// plotWorkerLoad draws, for every policy, each worker's share of the
// successful requests, workers ranked from busiest (worker ids differ
// between clusters, ranks compare).
func plotWorkerLoad(r *Report, path string) error {
	p := plot.New()
	p.Title.Text = "Share of requests per worker (ranked, busiest first)"
	p.X.Label.Text = "worker rank"
	p.Y.Label.Text = "share of requests (%)"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	n := len(r.Runs)
	maxWorkers := 0
	w := vg.Points(max(4, 40/float64(max(n, 1))))
	for i, run := range r.Runs {
		counts := make([]float64, 0, len(run.Overall.Workers))
		var total float64
		for _, c := range run.Overall.Workers {
			counts = append(counts, float64(c))
			total += float64(c)
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(counts)))
		maxWorkers = max(maxWorkers, len(counts))
		vals := make(plotter.Values, len(counts))
		for j, c := range counts {
			vals[j] = 100 * c / total
		}
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
		p.Legend.Add(r.Policies[i].Policy, bars)
	}
	names := make([]string, maxWorkers)
	for j := range names {
		names[j] = fmt.Sprint(j + 1)
	}
	if maxWorkers > 0 {
		p.NominalX(names...)
	}
	if maxWorkers > 0 {
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
