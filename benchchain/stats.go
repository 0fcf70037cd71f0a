package benchchain

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Latencies holds every latency of one run: exact percentiles, at the cost
// of 8 bytes per request (a 15 s run at 4,000/s keeps 480 kB).
type Latencies struct {
	d      []time.Duration
	sorted bool
}

// Add records one latency.
func (l *Latencies) Add(d time.Duration) {
	l.d = append(l.d, d)
	l.sorted = false
}

// Len is the number of latencies recorded.
func (l *Latencies) Len() int { return len(l.d) }

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100): the
// smallest latency at least p% of the recorded ones do not exceed. It is 0
// with nothing recorded.
func (l *Latencies) Percentile(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.d)
		l.sorted = true
	}
	rank := int(math.Ceil(p / 100 * float64(len(l.d))))
	rank = min(max(rank, 1), len(l.d))
	return l.d[rank-1]
}

// Max is the largest latency recorded (0 with none).
func (l *Latencies) Max() time.Duration { return l.Percentile(100) }

// Result is what one target did at one offered rate.
type Result struct {
	Target   string  `json:"target"`     // direct, chain, or an External's name
	Rate     float64 `json:"rate"`       // offered requests per second
	Duration float64 `json:"duration_s"` // how long the load was offered
	Sent     int     `json:"sent"`       // requests sent
	OK       int     `json:"ok"`         // answered 200
	// Achieved is the rate of 200 answers over the offered duration.
	Achieved float64 `json:"achieved"`
	// Latency percentiles of the 200 answers in ms, from the intended send
	// time to the end of the answer's body.
	P50, P90, P99, Max float64     `json:"-"`
	Latency            latencyJSON `json:"latency_ms"`
	// Statuses counts answers by status code (with the controller's
	// reason, as in "429/overloaded", when a failure carries one), and
	// failures without an answer: "timeout" (no answer within the client's
	// timeout), "error" (the connection failed), "not-sent" (the client
	// had too many requests in flight).
	Statuses map[string]int `json:"statuses"`
	// SendLagMax is how far behind its schedule the client fell at worst,
	// in ms: large values mean the client, not the target, limited the
	// rate (its lag is in the latencies all the same).
	SendLagMax float64 `json:"send_lag_max_ms"`
	// WindowMinMax is the largest, over the 100 ms windows the 200 answers
	// ended in, of a window's smallest latency (ms): above the latency of
	// an idle chain only when every request of some window queued, what
	// the controller's admission rule watches for.
	WindowMinMax float64 `json:"window_min_max_ms"`
	// HandlerMeanMs is the mean time the controller's /run handler took per
	// answer (its pullsched_controller_request_seconds): set against the
	// client's latency, it tells waiting inside the chain from waiting
	// before the handler (the client's connections, the controller's
	// accept queue and scheduling). AdmissionRefused counts the 429s of
	// its admission rule. Chain only.
	HandlerMeanMs    float64 `json:"controller_handler_mean_ms,omitempty"`
	AdmissionRefused int     `json:"admission_refused,omitempty"`
	// RetryAfter counts the 429 and 503 answers that carried Retry-After;
	// RejectP50Ms, RejectP99Ms and RejectMaxMs are the latencies of all 429
	// and 503 answers (ms, from the intended send time): overload should be
	// refused quickly.
	RetryAfter  int     `json:"retry_after"`
	RejectP50Ms float64 `json:"reject_p50_ms"`
	RejectP99Ms float64 `json:"reject_p99_ms"`
	RejectMaxMs float64 `json:"reject_max_ms"`
	// CPU is the CPU milliseconds each part spent per request sent, by part
	// name ("bench" is this process: the client and the no-op workers, and
	// with in-process parts everything; the invokers are added up).
	CPU map[string]float64 `json:"cpu_ms_per_req"`
	// Held says whether the target kept up: at least 95% of the offered
	// rate answered 200, at most 1% failed, and p99 under one second.
	Held bool `json:"held"`
}

type latencyJSON struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// held is the rule of Result.Held.
func held(r Result) bool {
	if r.Sent == 0 {
		return false
	}
	failed := r.Sent - r.OK
	return r.Achieved >= 0.95*r.Rate && float64(failed) <= 0.01*float64(r.Sent) && r.P99 < 1000
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// summarize fills the percentiles, achieved rate and Held of r from lat.
func summarize(r *Result, lat *Latencies) {
	r.P50, r.P90, r.P99, r.Max = ms(lat.Percentile(50)), ms(lat.Percentile(90)), ms(lat.Percentile(99)), ms(lat.Max())
	r.Latency = latencyJSON{r.P50, r.P90, r.P99, r.Max}
	if r.Duration > 0 {
		r.Achieved = math.Round(float64(r.OK)/r.Duration*10) / 10
	}
	r.Held = held(*r)
}

// Report is a whole bench run.
type Report struct {
	Mode    string `json:"mode"` // in-process or processes
	Broker  string `json:"broker"`
	Workers int    `json:"workers"`
	// WorkerAddrs are where the no-op workers listened.
	WorkerAddrs []string `json:"worker_addrs,omitempty"`
	// Targets are the targets in the order each rate was offered to them.
	Targets []string `json:"targets,omitempty"`
	Results []Result `json:"results"`
}

// targets is Targets, or when unset (a report read from older JSON) the
// targets of the results in order of appearance.
func (rep Report) targets() []string {
	if len(rep.Targets) > 0 {
		return rep.Targets
	}
	var out []string
	for _, r := range rep.Results {
		if !slices.Contains(out, r.Target) {
			out = append(out, r.Target)
		}
	}
	return out
}

// HighestHeld is the highest offered rate the target held (0: none).
func (rep Report) HighestHeld(target string) float64 {
	best := 0.0
	for _, r := range rep.Results {
		if r.Target == target && r.Held && r.Rate > best {
			best = r.Rate
		}
	}
	return best
}

// HeldThrough is the highest offered rate the target held with every
// lower rate it was offered held too (0: none): HighestHeld less a run
// that held above a rate that failed, which on a noisy machine is luck as
// often as capacity.
func (rep Report) HeldThrough(target string) float64 {
	var rs []Result
	for _, r := range rep.Results {
		if r.Target == target {
			rs = append(rs, r)
		}
	}
	slices.SortStableFunc(rs, func(a, b Result) int { return cmp.Compare(a.Rate, b.Rate) })
	best := 0.0
	for _, r := range rs {
		if !r.Held {
			break
		}
		best = r.Rate
	}
	return best
}

// HeldRatio is a's highest rate held over b's (0 when b held none of the
// rates tried): the figure of "as fast as" comparisons. Both are bounded
// by the rates tried, so a ratio is only as fine as their steps.
func (rep Report) HeldRatio(a, b string) float64 {
	hb := rep.HighestHeld(b)
	if hb == 0 {
		return 0
	}
	return rep.HighestHeld(a) / hb
}

// WriteJSON writes the report as indented JSON, with each target's
// highest rate held.
func (rep Report) WriteJSON(w io.Writer) error {
	held, through := map[string]float64{}, map[string]float64{}
	for _, t := range rep.targets() {
		held[t], through[t] = rep.HighestHeld(t), rep.HeldThrough(t)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Report
		HighestHeld map[string]float64 `json:"highest_held"`
		HeldThrough map[string]float64 `json:"held_through"`
	}{rep, held, through})
}

// WriteTable writes one line per target and rate, and the chain's added
// latency over the direct target where both ran at a rate.
func (rep Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "target\trate/s\tachieved/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\twin-min ms\t429/503 p99 ms\tstatuses\tcpu ms/req\theld\t\n")
	direct := map[float64]Result{}
	for _, r := range rep.Results {
		if r.Target == "direct" {
			direct[r.Rate] = r
		}
	}
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%g\t%.1f\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%v\t\n", r.Target, r.Rate, r.Achieved,
			r.P50, r.P90, r.P99, r.Max, r.WindowMinMax, r.RejectP99Ms, statusString(r.Statuses), cpuString(r.CPU), r.Held)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var lines []string
	for _, r := range rep.Results {
		d, ok := direct[r.Rate]
		if !ok || r.Target == "direct" {
			continue
		}
		lines = append(lines, fmt.Sprintf("  %s at %g/s: p50 %+.2f ms (%.1f×), p99 %+.2f ms (%.1f×)", r.Target, r.Rate,
			r.P50-d.P50, ratio(r.P50, d.P50), r.P99-d.P99, ratio(r.P99, d.P99)))
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "added over direct:\n%s\n", strings.Join(lines, "\n"))
	}
	targets := rep.targets()
	for _, t := range targets {
		fmt.Fprintf(w, "highest rate held, %s: %g/s, every rate up to %g/s (of %s tried)\n", t, rep.HighestHeld(t), rep.HeldThrough(t),
			rep.ratesTried(t))
	}
	for _, t := range targets {
		if t == "direct" || t == "chain" || !slices.Contains(targets, "chain") {
			continue
		}
		if rep.HighestHeld(t) > 0 {
			line := fmt.Sprintf("highest rate held, chain ÷ %s: %.2f×", t, rep.HeldRatio("chain", t))
			if h := rep.HeldThrough(t); h > 0 {
				line += fmt.Sprintf(" (every rate up to: %.2f×)", rep.HeldThrough("chain")/h)
			}
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

// ratesTried is the range of rates target t was offered, as "a–b/s".
func (rep Report) ratesTried(t string) string {
	lo, hi := math.Inf(1), 0.0
	for _, r := range rep.Results {
		if r.Target == t {
			lo, hi = min(lo, r.Rate), max(hi, r.Rate)
		}
	}
	if hi == 0 {
		return "none"
	}
	return fmt.Sprintf("%g–%g/s", lo, hi)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.Inf(1)
	}
	return a / b
}

func statusString(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

func cpuString(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%.3f", k, m[k])
	}
	return strings.Join(parts, ",")
}
