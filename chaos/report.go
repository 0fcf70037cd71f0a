package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of a run: its settings and one Result per
// scenario.
type Report struct {
	Started   time.Time `json:"started"`
	Form      string    `json:"form"` // short or long
	Brokers   []string  `json:"brokers"`
	Kafka     string    `json:"kafka,omitempty"` // what the broker says it is
	Rate      float64   `json:"rate"`
	Functions int       `json:"functions"`
	TimeScale float64   `json:"time_scale"`
	Timeout   string    `json:"timeout"`
	Slow      string    `json:"slow"`
	DupBudget float64   `json:"dup_budget"`
	// Load is the machine's load average (1, 5, 15 min) when the run
	// started and ended: latency outliers mean little on a busy machine.
	LoadStart string   `json:"load_start,omitempty"`
	LoadEnd   string   `json:"load_end,omitempty"`
	Results   []Result `json:"results"`
	Pass      bool     `json:"pass"`
	// Error is set when the run itself failed (a part would not start).
	Error string `json:"error,omitempty"`
}

// Finish sets Pass from the results and the run's own error.
func (r *Report) Finish() {
	r.Pass = r.Error == "" && len(r.Results) > 0
	for _, x := range r.Results {
		r.Pass = r.Pass && x.Pass
	}
}

// JSON writes the report as indented JSON.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Markdown writes the report's table and, below it, every failure.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "pullsched chaos (%s form) against %s%s: %.0f req/s over %d functions, ?timeout=%s, time scale %g\n\n",
		r.Form, strings.Join(r.Brokers, ","), kafkaSuffix(r.Kafka), r.Rate, r.Functions, r.Timeout, r.TimeScale)
	if r.LoadStart != "" {
		fmt.Fprintf(&b, "load average at start %s, at end %s\n\n", r.LoadStart, r.LoadEnd)
	}
	b.WriteString("| scenario | sent | answered by status | hangs | late | duplicates (exec) | counted by parts | recovery (bound) | p99 200 | stuck | result |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---|---|---:|---|---|\n")
	for _, x := range r.Results {
		verdict := "pass"
		if !x.Pass {
			verdict = "**FAIL**"
		}
		stuck := "none"
		if len(x.NotReady) > 0 {
			stuck = strings.Join(x.NotReady, "; ")
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %d (%.2f%%) | %s | %s | %.0f ms | %s | %s |\n",
			x.Scenario, x.Sent, statuses(x.ByStatus), x.Hangs, x.Late, x.Duplicates, 100*x.DuplicateRate,
			counted(x), recovery(x), x.P99Ms, stuck, verdict)
	}
	var fails []string
	for _, x := range r.Results {
		for _, f := range x.Failures {
			fails = append(fails, fmt.Sprintf("- %s: %s", x.Scenario, f))
		}
		for _, n := range x.Notes {
			fails = append(fails, fmt.Sprintf("- %s (note): %s", x.Scenario, n))
		}
	}
	if r.Error != "" {
		fails = append(fails, "- run: "+r.Error)
	}
	if len(fails) > 0 {
		b.WriteString("\n" + strings.Join(fails, "\n") + "\n")
	}
	if r.Pass {
		b.WriteString("\nall assertions hold\n")
	} else {
		b.WriteString("\nFAILED\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func kafkaSuffix(k string) string {
	if k == "" {
		return ""
	}
	return " (" + k + ")"
}

// statuses renders ByStatus as "200: 980, 504: 20", codes in order.
func statuses(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

// counted renders the parts' own counters that matter for the row:
// duplicates they caught, and dead letters against injected records.
func counted(x Result) string {
	var parts []string
	if v := x.Counted["duplicates_total"]; v > 0 {
		parts = append(parts, fmt.Sprintf("dup %.0f", v))
	}
	if v := x.Counted["predecessor_duplicates_total"]; v > 0 {
		parts = append(parts, fmt.Sprintf("of them predecessor %.0f", v))
	}
	if v := x.Counted["results_duplicate"]; v > 0 {
		parts = append(parts, fmt.Sprintf("dup results %.0f", v))
	}
	if x.Injected > 0 {
		parts = append(parts, fmt.Sprintf("dead-lettered %d of %d injected", x.DeadLettered, x.Injected))
	}
	if v := x.Counted["dead_letter_failures_total"]; v > 0 {
		parts = append(parts, fmt.Sprintf("dlq failures %.0f", v))
	}
	if x.Target != "" && x.TargetServed > 0 {
		parts = append(parts, fmt.Sprintf("%s served %d", x.Target, x.TargetServed))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

func recovery(x Result) string {
	var b strings.Builder
	switch {
	case x.BoundSec < 0 && x.OutageSec > 0:
		fmt.Fprintf(&b, "outage %.1f s", x.OutageSec)
	case x.BoundSec < 0:
		fmt.Fprintf(&b, "%.1f s (not judged)", x.RecoverySec)
	default:
		fmt.Fprintf(&b, "%.1f s (≤ %.1f)", x.RecoverySec, x.BoundSec)
	}
	if x.Restarted {
		fmt.Fprintf(&b, "; after restart %.1f s (≤ %.1f)", x.RestartRecoverySec, x.RestartBoundSec)
	}
	if x.Relapses > 0 {
		fmt.Fprintf(&b, "; %d relapse(s)", x.Relapses)
	}
	if !x.Recovered {
		b.WriteString("; NOT recovered")
	}
	return b.String()
}
