package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// counterKeys are the metrics the suite follows, by the key it reports
// them under: the name suffix, summed over label sets and parts.
// results_duplicate is the controller's results_total{outcome="duplicate"}.
var counterKeys = []string{
	"duplicates_total", "predecessor_duplicates_total", "results_duplicate",
	"dead_letters_total", "dead_letter_references_total", "dead_letter_failures_total",
	"worker_records_ignored_total", "stuck_partitions",
}

// parseMetrics reads Prometheus text exposition and sums the samples of
// the metrics in counterKeys.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels := line, ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, labels = line[:i], line[i+1:j]
			line = name + line[j+1:]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name = f[0]
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		if key := metricKey(name, labels); key != "" {
			out[key] += v
		}
	}
	return out, sc.Err()
}

// metricKey maps a metric name (and labels) to its key in counterKeys, ""
// for metrics the suite does not follow.
func metricKey(name, labels string) string {
	switch {
	case strings.HasSuffix(name, "_predecessor_duplicates_total"):
		return "predecessor_duplicates_total"
	case strings.HasSuffix(name, "_duplicates_total"):
		return "duplicates_total"
	case name == "pullsched_controller_results_total" && strings.Contains(labels, `outcome="duplicate"`):
		return "results_duplicate"
	}
	for _, k := range counterKeys {
		if strings.HasSuffix(name, "_"+k) {
			return k
		}
	}
	return ""
}

// scrape fetches and parses a part's /metrics.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// counterDelta is what a part counted over a scenario: after - before, or,
// when the part was restarted meanwhile, what it counted up to the fault
// (mid - before) plus what its new process counted (after).
func counterDelta(before, mid, after map[string]float64, restarted bool) map[string]float64 {
	out := map[string]float64{}
	for _, k := range counterKeys {
		if k == "stuck_partitions" {
			continue // a gauge
		}
		var d float64
		if restarted {
			d = mid[k] - before[k] + after[k]
		} else {
			d = after[k] - before[k]
		}
		if d != 0 {
			out[k] = d
		}
	}
	return out
}
