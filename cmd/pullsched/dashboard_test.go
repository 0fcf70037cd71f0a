package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/controllerbridge"
	"github.com/pullsched/pullsched/invokerbridge"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/scheduler"
	"github.com/pullsched/pullsched/topics"
)

const dashboardFile = "../../docs/grafana/pullsched.json"

// dashboard is the part of Grafana's dashboard model the check reads.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
	Templ  struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"` // a collapsed row's
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// queries returns every PromQL expression of the dashboard by where it is
// (panel title or variable name), and the problems of its structure.
func (d *dashboard) queries() (map[string][]string, []error) {
	out := map[string][]string{}
	var errs []error
	titles := map[string]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if titles[p.Title] {
				errs = append(errs, fmt.Errorf("two panels titled %q", p.Title))
			}
			titles[p.Title] = true
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				errs = append(errs, fmt.Errorf("panel %q: datasource is not the ${datasource} variable, so the dashboard cannot be imported as is", p.Title))
			}
			if len(p.Targets) == 0 {
				errs = append(errs, fmt.Errorf("panel %q queries nothing", p.Title))
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					errs = append(errs, fmt.Errorf("panel %q: a target without expression", p.Title))
					continue
				}
				out["panel "+p.Title] = append(out["panel "+p.Title], t.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templ.List {
		if v.Type != "query" {
			continue
		}
		var q string
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				errs = append(errs, fmt.Errorf("variable %s: query neither a string nor an object: %v", v.Name, err))
				continue
			}
			q = obj.Query
		}
		// label_values(<selector>, <label>): the selector is PromQL.
		if inner, ok := strings.CutPrefix(strings.TrimSpace(q), "label_values("); ok {
			if i := strings.LastIndex(inner, ","); i > 0 {
				q = inner[:i]
			}
		}
		out["variable "+v.Name] = append(out["variable "+v.Name], q)
	}
	return out, errs
}

// promqlKeywords are PromQL words that are not metric names. Grouping
// modifiers take a label list in parentheses, which is skipped.
var (
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
	promqlGrouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
)

// promqlMetrics returns the metric names expr selects: identifiers that
// are not functions, aggregations, keywords, label names or values.
func promqlMetrics(expr string) ([]string, error) {
	var names []string
	i, n := 0, len(expr)
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipSpace := func(j int) int {
		for j < n && (expr[j] == ' ' || expr[j] == '\t' || expr[j] == '\n' || expr[j] == '\r') {
			j++
		}
		return j
	}
	// skipTo returns the index after the bracket closing the one at j,
	// stepping over quoted strings.
	skipTo := func(j int, open, close byte) (int, error) {
		depth := 0
		for ; j < n; j++ {
			switch c := expr[j]; c {
			case '"', '\'', '`':
				k := j + 1
				for k < n && expr[k] != c {
					if expr[k] == '\\' && c != '`' {
						k++
					}
					k++
				}
				if k >= n {
					return 0, fmt.Errorf("unterminated string at %d", j)
				}
				j = k
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %c at %d", open, j)
	}
	for i < n {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			k := i + 1
			for k < n && expr[k] != c {
				if expr[k] == '\\' && c != '`' {
					k++
				}
				k++
			}
			if k >= n {
				return nil, fmt.Errorf("%q: unterminated string", expr)
			}
			i = k + 1
		case c == '{':
			end, err := skipTo(i, '{', '}')
			if err != nil {
				return nil, fmt.Errorf("%q: %w", expr, err)
			}
			if strings.Contains(expr[i:end], "__name__") {
				return nil, fmt.Errorf("%q: selecting by __name__ is not checked; name the metric", expr)
			}
			i = end
		case c == '[':
			end, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, fmt.Errorf("%q: %w", expr, err)
			}
			i = end
		case c == '$': // a Grafana variable: $name or ${name}
			i++
			if i < n && expr[i] == '{' {
				end, err := skipTo(i, '{', '}')
				if err != nil {
					return nil, fmt.Errorf("%q: %w", expr, err)
				}
				i = end
			}
			for i < n && isPart(expr[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.': // numbers and durations (5m, 1e3)
			for i < n && (isPart(expr[i]) || expr[i] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < n && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			next := skipSpace(j)
			switch {
			case slices.Contains(promqlGrouping, word):
				if next < n && expr[next] == '(' {
					end, err := skipTo(next, '(', ')')
					if err != nil {
						return nil, fmt.Errorf("%q: %w", expr, err)
					}
					j = end
				}
			case slices.Contains(promqlKeywords, strings.ToLower(word)):
			case next < n && expr[next] == '(': // a function or an aggregation
			case nextWord(expr, next) == "by" || nextWord(expr, next) == "without": // sum by (l) (...)
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names, nil
}

// nextWord returns the identifier starting at expr[i], "" if none.
func nextWord(expr string, i int) string {
	j := i
	for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z') {
		j++
	}
	return expr[i:j]
}

// registered reports whether a metric named name is registered in reg,
// without gathering (a labelled metric with no series yet gathers
// nothing): it registers a probe descriptor of that name with a label set
// and help text of its own, which the registry refuses exactly when a
// metric of that name is already registered.
func registered(reg *prometheus.Registry, name string) bool {
	probe := &probeCollector{desc: prometheus.NewDesc(name, "dashboard test probe", []string{"dashboard_probe"}, nil)}
	if err := reg.Register(probe); err != nil {
		return true // refused: the name is taken (promqlMetrics yields only valid names)
	}
	reg.Unregister(probe)
	return false
}

type probeCollector struct{ desc *prometheus.Desc }

func (p *probeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }
func (p *probeCollector) Collect(chan<- prometheus.Metric)    {}

// partRegistries builds the registries of the parts that serve /metrics,
// as their New functions fill them (none connects to Kafka).
func partRegistries(t *testing.T) map[string]*prometheus.Registry {
	t.Helper()
	kafka := kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}
	regs := map[string]*prometheus.Registry{}
	s, err := scheduler.New(scheduler.Config{Kafka: kafka, ID: "dash", Listen: "127.0.0.1:0", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("scheduler: %v", err)
	}
	regs["scheduler"] = s.Registry()
	c, err := controllerbridge.New(controllerbridge.Config{Kafka: kafka, ID: "dash", Listen: "127.0.0.1:0", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	regs["controller"] = c.Registry()
	b, err := invokerbridge.New(invokerbridge.Config{Kafka: kafka, WorkerURL: "http://127.0.0.1:1", Listen: "127.0.0.1:0",
		Topics: topics.Config{}, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("invoker: %v", err)
	}
	regs["invoker"] = b.Registry()
	return regs
}

// unknownMetrics returns, per place, the metric names d queries that no
// registry holds; a histogram's _bucket, _sum and _count series count as
// its name's. used counts the names each registry answered.
func unknownMetrics(d *dashboard, regs map[string]*prometheus.Registry) (unknown []string, used map[string]int, errs []error) {
	qs, errs := d.queries()
	used = map[string]int{}
	find := func(name string) bool {
		var in []string
		for part, reg := range regs {
			if registered(reg, name) {
				in = append(in, part)
			}
		}
		if len(in) < len(regs) { // the Go and process collectors are every part's
			for _, part := range in {
				used[part]++
			}
		}
		return len(in) > 0
	}
	for where, exprs := range qs {
		for _, e := range exprs {
			names, err := promqlMetrics(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			if len(names) == 0 {
				errs = append(errs, fmt.Errorf("%s: %q selects no metric", where, e))
			}
			for _, name := range names {
				if find(name) {
					continue
				}
				base, ok := "", false
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, cut := strings.CutSuffix(name, suf); cut {
						base, ok = b, true
					}
				}
				if ok && find(base) {
					continue
				}
				unknown = append(unknown, where+": "+name)
			}
		}
	}
	sort.Strings(unknown)
	return unknown, used, errs
}

func readDashboard(t *testing.T, b []byte) *dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	return &d
}

// TestDashboardQueriesRegisteredMetrics: every metric the Grafana dashboard
// queries is registered by a part, each part's metrics are on it, and it
// imports as is (datasource variable, no empty panels).
func TestDashboardQueriesRegisteredMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	d := readDashboard(t, b)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: both needed for import and links", d.UID, d.Title)
	}
	regs := partRegistries(t)
	unknown, used, errs := unknownMetrics(d, regs)
	for _, err := range errs {
		t.Error(err)
	}
	for _, u := range unknown {
		t.Errorf("%s is registered by no part", u)
	}
	for part := range regs {
		if used[part] == 0 {
			t.Errorf("no panel shows a metric of the %s", part)
		}
	}
}

// TestDashboardCheckCatches: the check fails on a dashboard that queries a
// misspelt metric, and the extractor tells metric names from functions,
// labels, keywords and Grafana variables.
func TestDashboardCheckCatches(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (code) (rate(pullsched_controller_requests_total{job=~"$job", code!="200"}[$__rate_interval]))`, []string{"pullsched_controller_requests_total"}},
		{`histogram_quantile(0.99, sum(rate(a_bucket{x="by (y)"}[5m])) by (le))`, []string{"a_bucket"}},
		{`sum(rate(a[1m])) / ignoring (worker) group_left (fn) b offset 5m or on() vector(0)`, []string{"a", "b"}},
		{`a > bool 3 unless c{l='}'} and inf`, []string{"a", "c"}},
		{`label_replace(up, "dst", "$1", "src", "(.*)") * ${scale}`, []string{"up"}},
		{`max_over_time(x[5m:30s]) + 1e3 - .5`, []string{"x"}},
	} {
		got, err := promqlMetrics(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("promqlMetrics(%s) = %v, %v; want %v", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{`rate(a{x="1"[5m])`, `{__name__=~"pullsched_.*"}`, `a{x="unterminated}`} {
		if _, err := promqlMetrics(bad); err == nil {
			t.Errorf("promqlMetrics(%s): no error", bad)
		}
	}

	regs := partRegistries(t)
	d := readDashboard(t, []byte(`{"uid":"x","title":"x","panels":[{"type":"row","panels":[
		{"type":"timeseries","title":"ok","datasource":{"uid":"${datasource}"},"targets":[{"expr":"rate(pullsched_scheduler_decisions_total[1m])"}]},
		{"type":"timeseries","title":"typo","datasource":{"uid":"${datasource}"},"targets":[{"expr":"rate(pullsched_scheduler_decision_total[1m])"}]},
		{"type":"timeseries","title":"histogram","datasource":{"uid":"${datasource}"},"targets":[{"expr":"rate(pullsched_invoker_call_duration_seconds_count[1m])"}]},
		{"type":"timeseries","title":"not a histogram","datasource":{"uid":"${datasource}"},"targets":[{"expr":"rate(pullsched_invoker_calls_bucket[1m])"}]},
		{"type":"timeseries","title":"empty","datasource":{"uid":"prom"},"targets":[]}]}],
		"templating":{"list":[{"type":"query","name":"job","query":{"query":"label_values(nonexistent_metric, job)"}}]}}`))
	unknown, _, errs := unknownMetrics(d, regs)
	want := []string{"panel not a histogram: pullsched_invoker_calls_bucket", "panel typo: pullsched_scheduler_decision_total",
		"variable job: nonexistent_metric"}
	if !slices.Equal(unknown, want) {
		t.Errorf("unknown %q, want %q", unknown, want)
	}
	if len(errs) != 2 { // "empty": wrong datasource, no target
		t.Errorf("structure errors %v, want the empty panel's two", errs)
	}
}
