package eval

import (
	"fmt"
	"io"
	"math"
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

func relString(x, base float64) string {
	r, ok := Relative(x, base)
	if !ok {
		return "n/a"
	}
	if math.Abs(r) < 0.0005 {
		return "0.0%"
	}
	return fmt.Sprintf("%+.1f%%", 100*r)
}

// metric is one column of the tables.
type metric struct {
	head string
	get  func(Result) float64
	fmt  string
}

var metrics = []metric{
	{"requests", func(r Result) float64 { return float64(r.Requests) }, "%.0f"},
	{"errors", func(r Result) float64 { return float64(r.Errors) }, "%.0f"},
	{"mean ms", func(r Result) float64 { return r.MeanLatencyMS }, "%.0f"},
	{"p50 ms", func(r Result) float64 { return r.P50LatencyMS }, "%.0f"},
	{"p99 ms", func(r Result) float64 { return r.P99LatencyMS }, "%.0f"},
	{"req/s", func(r Result) float64 { return r.RPS }, "%.1f"},
	{"cold %", func(r Result) float64 { return 100 * r.ColdStartRate }, "%.1f"},
	{"load CV", func(r Result) float64 { return r.LoadCV }, "%.3f"},
}

// rows returns the header and rows of the absolute table and of the table
// relative to the baseline.
func (r *Report) rows() (abs, rel [][]string) {
	head := []string{"policy"}
	for _, m := range metrics {
		head = append(head, m.head)
	}
	abs = append(abs, head)
	rel = append(rel, head)
	if len(r.Policies) == 0 {
		return abs, rel
	}
	base := r.Policies[r.Baseline()]
	for _, p := range r.Policies {
		a, d := []string{p.Policy}, []string{p.Policy}
		for _, m := range metrics {
			a = append(a, fmt.Sprintf(m.fmt, m.get(p)))
			d = append(d, relString(m.get(p), m.get(base)))
		}
		abs = append(abs, a)
		rel = append(rel, d)
	}
	return abs, rel
}

// WriteTable prints the side-by-side table of r and the relative
// differences to its baseline.
func WriteTable(w io.Writer, r *Report) error {
	abs, rel := r.rows()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	put := func(rows [][]string) {
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	put(abs)
	if len(r.Policies) > 0 {
		fmt.Fprintf(tw, "\nrelative to %s:\n", r.Policies[r.Baseline()].Policy)
		put(rel)
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

// Markdown renders report.md: settings, the tables, per-stage figures and
// the plots.
func (r *Report) Markdown() string {
	var b strings.Builder
	s := r.Settings
	b.WriteString("# pullsched evaluation\n\n")
	fmt.Fprintf(&b, "Workload: the Hiku evaluation's closed loop — stages %s (VUs:duration, model time), think time %s, "+
		"%d FunctionBench functions × %d copies weighted by a seeded sample of Azure 2021 invocation counts, seed %d.\n\n",
		loadgen.FormatStages(s.Stages), thinkString(s), 8, copiesOf(s), s.Seed)
	fmt.Fprintf(&b, "Time scale %g: workload and simulated workers run at %g× wall time; every latency and rate below is in "+
		"model time (wall latency ÷ time scale), so overheads that do not scale (HTTP, Kafka, scheduling) count %g× in it.\n\n",
		s.TimeScale, s.TimeScale, 1/s.TimeScale)
	b.WriteString("Latency figures are over successful requests (nearest-rank percentiles); cold % is cold starts among answers " +
		"that said cold or warm; load CV is the mean over seconds of the coefficient of variation of requests per worker.\n\n")
	abs, rel := r.rows()
	b.WriteString("## Side by side\n\n")
	mdTable(&b, abs)
	if len(r.Policies) > 0 {
		fmt.Fprintf(&b, "\n## Relative to %s\n\n", r.Policies[r.Baseline()].Policy)
		mdTable(&b, rel)
	}
	b.WriteString("\n## Per stage\n\n")
	rows := [][]string{{"policy", "stage", "VUs", "requests", "errors", "mean ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "req/s", "cold %", "load CV"}}
	for i, run := range r.Runs {
		for _, st := range run.PerStage {
			rows = append(rows, []string{r.Policies[i].Policy, st.Name, fmt.Sprint(st.VUs), fmt.Sprint(st.Requests), fmt.Sprint(st.Errors),
				fmt.Sprintf("%.0f", st.MeanMS), fmt.Sprintf("%.0f", st.P50MS), fmt.Sprintf("%.0f", st.P90MS), fmt.Sprintf("%.0f", st.P95MS),
				fmt.Sprintf("%.0f", st.P99MS), fmt.Sprintf("%.1f", st.RPS), fmt.Sprintf("%.1f", 100*st.ColdStartRate), fmt.Sprintf("%.3f", st.LoadCV)})
		}
	}
	mdTable(&b, rows)
	b.WriteString("\n## Plots\n\n![latency CDF](latency-cdf.png)\n\n![requests per worker](worker-load.png)\n")
	return b.String()
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
