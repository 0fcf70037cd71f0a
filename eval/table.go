package eval

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/pullsched/pullsched/loadgen"
)

// Relative returns (x - base) / base, the relative difference of x to
// base, and false when base is 0 (undefined unless x is 0 too, which gives
// 0, true).
func Relative(x, base float64) (float64, bool) {
	if base == 0 {
		return 0, x == 0
	}
	return (x - base) / base, true
}

// statString renders s scaled by scale with verb f: "v" for one value,
// "v ± sd" for more, "n/a" for none.
func statString(s Stat, scale float64, f string) string {
	switch s.N {
	case 0:
		return "n/a"
	case 1:
		return num(f, scale*s.Mean)
	}
	return num(f, scale*s.Mean) + " ± " + num(strings.Replace(f, "+", "", 1), scale*s.SD)
}

// num formats v with verb f, without a sign on a value that rounds to 0.
func num(f string, v float64) string {
	out := fmt.Sprintf(f, v)
	if strings.Trim(out, "+-0.") == "" {
		out = strings.TrimLeft(out, "+-")
	}
	return out
}

// pctString renders a relative Stat in percent with a sign.
func pctString(s Stat) string {
	if s.N == 0 {
		return "n/a"
	}
	if math.Abs(s.Mean) < 0.0005 && s.SD < 0.0005 {
		return "0.0%"
	}
	return statString(s, 100, "%+.1f") + "%"
}

// summaryHead is the header of the table over seeds.
var summaryHead = []string{"contender", "mean ms", "p50 ms", "p99 ms", "cold %", "req/s", "load CV", "errors", "mean vs base", "cold vs base", "gap closed"}

// summaryRows returns the table over seeds of scenario sc: a row per
// contender, then the ideal row.
func (r *Report) summaryRows(sc Scenario) [][]string {
	rows := [][]string{summaryHead}
	var base *Summary
	for i := range r.Summary {
		s := &r.Summary[i]
		if s.Scenario != sc.Name {
			continue
		}
		if s.Policy == s.Baseline {
			base = s
		}
		rows = append(rows, []string{s.Policy,
			statString(s.MeanLatencyMS, 1, "%.0f"), statString(s.P50LatencyMS, 1, "%.0f"), statString(s.P99LatencyMS, 1, "%.0f"),
			statString(s.ColdStartRate, 100, "%.1f"), statString(s.RPS, 1, "%.1f"), statString(s.LoadCV, 1, "%.3f"),
			statString(s.Errors, 1, "%.0f"), pctString(s.MeanLatencyVsBaseline), pctString(s.ColdStartRateVsBaseline),
			gapString(s.GapClosed)})
	}
	if base != nil && base.IdealMeanLatencyMS.N > 0 {
		rows = append(rows, []string{"ideal",
			statString(base.IdealMeanLatencyMS, 1, "%.0f"), statString(base.IdealP50LatencyMS, 1, "%.0f"), statString(base.IdealP99LatencyMS, 1, "%.0f"),
			"0.0", "–", "–", "–", pctString(r.idealVsBaseline(sc)), "–", "100%"})
	}
	return rows
}

func gapString(s Stat) string {
	if s.N == 0 {
		return "n/a"
	}
	return statString(s, 100, "%.0f") + "%"
}

// idealVsBaseline is the relative difference of the ideal mean latency to
// the baseline's, per seed, over the seeds of sc.
func (r *Report) idealVsBaseline(sc Scenario) Stat {
	var xs []float64
	base := r.Baseline()
	for _, row := range r.Rows {
		if row.Scenario == sc.Name && row.Policy == base {
			if d, ok := Relative(row.IdealMeanLatencyMS, row.MeanLatencyMS); ok {
				xs = append(xs, d)
			}
		}
	}
	return StatOf(xs)
}

// scenarioCaption says what the table of sc is over.
func (r *Report) scenarioCaption(sc Scenario) string {
	over := "seed " + seedsString(r.Seeds)
	if len(r.Seeds) > 1 {
		over = "seeds " + seedsString(r.Seeds) + " (mean ± sample std dev)"
	}
	return fmt.Sprintf("scenario %s, %d MB per worker, %s; vs base: relative to %s; gap closed: towards the ideal",
		sc.Name, sc.MemoryMB, over, r.Baseline())
}

// WriteTable prints, per scenario, the table of the contenders' figures
// over the seeds, with the ideal row.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for i, sc := range r.Scenarios {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintln(tw, r.scenarioCaption(sc)+":")
		for _, row := range r.summaryRows(sc) {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		// Each scenario's columns align on their own.
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return tw.Flush()
}

func mdTable(b *strings.Builder, rows [][]string) {
	for i, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|---" + strings.Repeat("|--:", len(row)-1) + "|\n")
		}
	}
}

// Markdown renders report.md: settings, and per scenario the table over
// seeds, every run's figures, the per-stage figures and the plots.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Settings
	b.WriteString("# pullsched evaluation\n\n")
	fmt.Fprintf(&b, "Workload: the Hiku evaluation's closed loop — stages %s (VUs:duration, model time), think time %s, "+
		"%d FunctionBench functions × %d copies weighted by seeded samples of Azure 2021 invocation counts (loadgen's default mix), seeds %s; "+
		"every contender of a scenario and seed gets the same workload.\n\n",
		loadgen.FormatStages(s.Stages), thinkString(s), 8, copiesOf(s), seedsString(r.Seeds))
	fmt.Fprintf(&b, "Contenders (policy@capacity each worker's bridge advertises; without a suffix %s): %s. Baseline: %s.\n\n",
		CapacityString(s.Capacity), contendersString(r.Contenders), r.Baseline())
	fmt.Fprintf(&b, "Time scale %g: workload and simulated workers run at %g× wall time; every latency and rate below is in "+
		"model time (wall latency ÷ time scale), so overheads that do not scale (HTTP, Kafka, scheduling) count %g× in it.\n\n",
		s.TimeScale, s.TimeScale, 1/s.TimeScale)
	b.WriteString("Latency figures are over successful requests (nearest-rank percentiles); cold % is cold starts among answers " +
		"that said cold or warm; load CV is the mean over seconds of the coefficient of variation of requests per worker. " +
		"Over several seeds a figure is mean ± sample standard deviation. \"vs base\" is the relative difference to the baseline " +
		"and \"gap closed\" is (baseline mean − mean) / (baseline mean − ideal mean), both per seed, then over the seeds. " +
		"The ideal row is the latency the baseline's requests would have had if each ran warm on an otherwise idle core " +
		"(its function's FunctionBench warm time).\n")
	idx := r.index()
	for _, sc := range r.Scenarios {
		fmt.Fprintf(&b, "\n## Scenario %s (%d MB per worker)\n\n", sc.Name, sc.MemoryMB)
		b.WriteString("### Over the seeds\n\n")
		mdTable(&b, r.summaryRows(sc))
		b.WriteString("\n### Every run\n\n")
		rows := [][]string{{"seed", "contender", "capacity", "requests", "errors", "mean ms", "p50 ms", "p99 ms", "req/s", "cold %", "load CV", "ideal mean ms", "gap closed"}}
		for _, seed := range r.Seeds {
			bi, hasBase := idx[runKey{sc.Name, seed, r.Baseline()}]
			for _, c := range r.Contenders {
				i, ok := idx[runKey{sc.Name, seed, c.Label}]
				if !ok {
					continue
				}
				x := r.Rows[i]
				gap := "n/a"
				if hasBase {
					if g, ok := GapClosed(x.MeanLatencyMS, r.Rows[bi].MeanLatencyMS, x.IdealMeanLatencyMS); ok {
						gap = fmt.Sprintf("%.0f%%", 100*g)
					}
				}
				rows = append(rows, []string{fmt.Sprint(seed), x.Policy, CapacityString(x.Capacity), fmt.Sprint(x.Requests), fmt.Sprint(x.Errors),
					fmt.Sprintf("%.0f", x.MeanLatencyMS), fmt.Sprintf("%.0f", x.P50LatencyMS), fmt.Sprintf("%.0f", x.P99LatencyMS),
					fmt.Sprintf("%.1f", x.RPS), fmt.Sprintf("%.1f", 100*x.ColdStartRate), fmt.Sprintf("%.3f", x.LoadCV),
					fmt.Sprintf("%.0f", x.IdealMeanLatencyMS), gap})
			}
		}
		mdTable(&b, rows)
		b.WriteString("\n### Per stage\n\n")
		rows = [][]string{{"seed", "contender", "stage", "VUs", "requests", "errors", "mean ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "req/s", "cold %", "load CV"}}
		for _, seed := range r.Seeds {
			for _, c := range r.Contenders {
				i, ok := idx[runKey{sc.Name, seed, c.Label}]
				if !ok {
					continue
				}
				for _, st := range r.Runs[i].PerStage {
					rows = append(rows, []string{fmt.Sprint(seed), c.Label, st.Name, fmt.Sprint(st.VUs), fmt.Sprint(st.Requests), fmt.Sprint(st.Errors),
						fmt.Sprintf("%.0f", st.MeanMS), fmt.Sprintf("%.0f", st.P50MS), fmt.Sprintf("%.0f", st.P90MS), fmt.Sprintf("%.0f", st.P95MS),
						fmt.Sprintf("%.0f", st.P99MS), fmt.Sprintf("%.1f", st.RPS), fmt.Sprintf("%.1f", 100*st.ColdStartRate), fmt.Sprintf("%.3f", st.LoadCV)})
				}
			}
		}
		mdTable(&b, rows)
		fmt.Fprintf(&b, "\n### Plots\n\n![latency CDF, seed %d](%s)\n\n![requests per worker](%s)\n", firstSeed(r.Seeds), cdfFileName(sc), loadFileName(sc))
	}
	return b.String()
}

func firstSeed(seeds []int64) int64 {
	if len(seeds) == 0 {
		return 0
	}
	return seeds[0]
}

func seedsString(seeds []int64) string {
	out := make([]string, len(seeds))
	for i, s := range seeds {
		out[i] = strconv.FormatInt(s, 10)
	}
	return strings.Join(out, ",")
}

func contendersString(cs []Contender) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s (%s, capacity %s)", c.Label, c.Policy, CapacityString(c.Capacity))
	}
	return strings.Join(out, ", ")
}

func thinkString(s Config) string {
	lo, hi := s.ThinkMin, s.ThinkMax
	if lo == 0 && hi == 0 {
		return "0.1–1 s"
	}
	if hi < 0 {
		return "none"
	}
	return fmt.Sprintf("%v–%v", lo, hi)
}

func copiesOf(s Config) int {
	if s.Copies == 0 {
		return 5
	}
	return s.Copies
}
