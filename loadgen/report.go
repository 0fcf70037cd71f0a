package loadgen

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Temperature is what an answer said about its start.
type Temperature int8

const (
	// Unknown: the answer had no usable X-Cold-Start header (or no answer).
	Unknown Temperature = iota
	// Warm: X-Cold-Start 0.
	Warm
	// Cold: X-Cold-Start 1.
	Cold
)

// Record is one request as loadgen saw it.
type Record struct {
	// Stage is the index of the stage the request was sent in.
	Stage int `json:"stage"`
	// VU is the index of the VU that sent it within its stage.
	VU int `json:"vu"`
	// Function is the function called.
	Function string `json:"function"`
	// At is when it was sent, as an offset from the start of the run, in
	// model time.
	At time.Duration `json:"at"`
	// Latency is from sending to the end of the answer's body, in model time.
	Latency time.Duration `json:"latency"`
	// Status is the HTTP status, 0 on a transport failure.
	Status int `json:"status"`
	// Err is the transport failure, if any.
	Err string `json:"err,omitempty"`
	// Start is what X-Cold-Start said.
	Start Temperature `json:"start"`
	// Worker is what X-Worker said; "" when absent.
	Worker string `json:"worker,omitempty"`
}

// OK reports whether the request got a 2xx answer.
func (r Record) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Summary holds the metrics of a set of requests (one stage, or the run).
// Latencies are in milliseconds of model time, over successful requests.
type Summary struct {
	// Name is "stage N" or "overall".
	Name string `json:"name"`
	// VUs is the stage's VU count (the largest, overall).
	VUs int `json:"vus"`
	// Seconds is the elapsed time, in model seconds, from the first request
	// sent to the last answer (whole run: the sum over stages).
	Seconds float64 `json:"seconds"`
	// Requests counts every request sent, successful or not.
	Requests int `json:"requests"`
	// Errors counts requests with a non-2xx status or a transport failure.
	Errors int `json:"errors"`
	// ErrorKinds counts errors by "status NNN" or "transport".
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// MeanMS and the percentiles are over successful requests; nearest-rank.
	MeanMS float64 `json:"mean_latency_ms"`
	P50MS  float64 `json:"p50_latency_ms"`
	P90MS  float64 `json:"p90_latency_ms"`
	P95MS  float64 `json:"p95_latency_ms"`
	P99MS  float64 `json:"p99_latency_ms"`
	MaxMS  float64 `json:"max_latency_ms"`
	// RPS is Requests / Seconds.
	RPS float64 `json:"rps"`
	// Cold and Warm count the answers that said so.
	Cold int `json:"cold"`
	Warm int `json:"warm"`
	// ColdStartRate is Cold / (Cold + Warm), a fraction; 0 with neither.
	ColdStartRate float64 `json:"cold_start_rate"`
	// LoadCV is the load imbalance (see LoadImbalance) over the requests'
	// assignments, against every worker seen in the run.
	LoadCV float64 `json:"load_cv"`
	// LoadSeconds is the number of seconds LoadCV averages over.
	LoadSeconds int `json:"load_seconds"`
	// Workers counts successful requests per worker.
	Workers map[string]int `json:"workers"`
}

// Report is the outcome of a run.
type Report struct {
	// Target is the controller driven.
	Target string `json:"target"`
	// Seed, TimeScale, Copies and Stages are the run's settings.
	Seed      int64   `json:"seed"`
	TimeScale float64 `json:"time_scale"`
	Copies    int     `json:"copies"`
	Stages    []Stage `json:"stages"`
	// MixMode is the run's Config.MixMode: "per-vu" or "shared".
	MixMode string `json:"mix_mode"`
	// Mix is the function mix used: in shared mode the one every VU drew
	// from; in per-VU mode the mean of the mixes of VU ids 1…max(VUs), each
	// function's expected share of the requests if every VU sent as many.
	Mix []Function `json:"mix"`
	// Started is the wall-clock start of the run.
	Started time.Time `json:"started"`
	// PerStage summarises each stage, in order.
	PerStage []Summary `json:"per_stage"`
	// Overall summarises the whole run.
	Overall Summary `json:"overall"`
	// CDF is the latency distribution of successful requests (model time),
	// at most 200 points.
	CDF []CDFPoint `json:"latency_cdf"`
	// Records holds every request; left out of JSON.
	Records []Record `json:"-"`
}

// Summarize computes the metrics of recs. workers is the set of workers the
// load imbalance counts (nil: those seen in recs); seconds is the elapsed
// model time the rate is over.
func Summarize(name string, recs []Record, workers []string, seconds float64) Summary {
	s := Summary{Name: name, Seconds: seconds, Workers: map[string]int{}}
	var lat []float64
	var as []Assignment
	for _, r := range recs {
		s.Requests++
		if !r.OK() {
			s.Errors++
			if s.ErrorKinds == nil {
				s.ErrorKinds = map[string]int{}
			}
			if r.Status == 0 {
				s.ErrorKinds["transport"]++
			} else {
				s.ErrorKinds["status "+strconv.Itoa(r.Status)]++
			}
			continue
		}
		lat = append(lat, float64(r.Latency)/float64(time.Millisecond))
		switch r.Start {
		case Cold:
			s.Cold++
		case Warm:
			s.Warm++
		}
		if r.Worker != "" {
			s.Workers[r.Worker]++
			as = append(as, Assignment{At: r.At, Worker: r.Worker})
		}
	}
	sorted := sortedCopy(lat)
	s.MeanMS = Mean(sorted)
	s.P50MS = Percentile(sorted, 50)
	s.P90MS = Percentile(sorted, 90)
	s.P95MS = Percentile(sorted, 95)
	s.P99MS = Percentile(sorted, 99)
	if len(sorted) > 0 {
		s.MaxMS = sorted[len(sorted)-1]
	}
	if seconds > 0 {
		s.RPS = float64(s.Requests) / seconds
	}
	if s.Cold+s.Warm > 0 {
		s.ColdStartRate = float64(s.Cold) / float64(s.Cold+s.Warm)
	}
	if workers == nil {
		workers = sortedKeys(s.Workers)
	}
	s.LoadCV, s.LoadSeconds = LoadImbalance(as, workers)
	return s
}

// Latencies returns the latencies of the successful requests in ms of model
// time, sorted ascending.
func (r *Report) Latencies() []float64 {
	var lat []float64
	for _, rec := range r.Records {
		if rec.OK() {
			lat = append(lat, float64(rec.Latency)/float64(time.Millisecond))
		}
	}
	return sortedCopy(lat)
}

// String is a short human summary of the run.
func (r *Report) String() string {
	o := r.Overall
	return fmt.Sprintf("%d requests, %d errors, %.1f req/s, latency mean %.0f p50 %.0f p90 %.0f p95 %.0f p99 %.0f ms, cold starts %.1f%%, load CV %.3f over %d workers",
		o.Requests, o.Errors, o.RPS, o.MeanMS, o.P50MS, o.P90MS, o.P95MS, o.P99MS, 100*o.ColdStartRate, o.LoadCV, len(o.Workers))
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
