package chaos

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// Sample is one request of the load and what became of it. Times are
// offsets from the start of its scenario.
type Sample struct {
	// Fn is the function called.
	Fn string `json:"fn"`
	// Nonce is carried in the request body; the counting proxy reports
	// the executions of each nonce.
	Nonce string `json:"nonce"`
	// Intended is when the open-loop schedule meant to send it; latency is
	// measured from here, so a stalled sender cannot hide waiting.
	Intended time.Duration `json:"intended"`
	// Sent is when it was actually sent; its deadline runs from here.
	Sent time.Duration `json:"sent"`
	// Done is when the answer, or the error, came.
	Done time.Duration `json:"done"`
	// Status is the HTTP status, 0 without one.
	Status int `json:"status"`
	// Err says why there is no status: ErrRefused or ErrHang.
	Err string `json:"err,omitempty"`
	// Outcome is the X-Outcome header ("unknown": the request may run).
	Outcome string `json:"outcome,omitempty"`
	// Worker is the X-Worker header.
	Worker string `json:"worker,omitempty"`
	// Reason is the reason of an error answer ({"error", "reason"}).
	Reason string `json:"reason,omitempty"`
}

// ReasonNoWorkers is the reason of a 503 when no worker is in rotation.
const ReasonNoWorkers = "no_workers"

// Sample errors.
const (
	// ErrRefused: the connection failed or dropped without an answer (the
	// controller was down or killed). Not a hang; the client knows.
	ErrRefused = "refused"
	// ErrHang: no answer by the deadline plus the slack.
	ErrHang = "hang"
)

// Latency is the time from the intended send to the answer.
func (s Sample) Latency() time.Duration { return s.Done - s.Intended }

// Good reports whether s was answered 200 within slow of its intended send.
func (s Sample) Good(slow time.Duration) bool {
	return s.Err == "" && s.Status == 200 && s.Latency() <= slow
}

// StatusKey is how s is counted in Result.ByStatus: the status code, with
// the reason of an error answer and "/unknown" for an X-Outcome: unknown
// one ("503 unavailable/unknown"), or the error.
func (s Sample) StatusKey() string {
	if s.Err != "" {
		return s.Err
	}
	k := strconv.Itoa(s.Status)
	if s.Reason != "" {
		k += " " + s.Reason
	}
	if s.Outcome != "" {
		k += "/" + s.Outcome
	}
	return k
}

// Execs is what the counting proxy saw of one nonce.
type Execs struct {
	// Attempts counts calls forwarded to a worker.
	Attempts int `json:"attempts"`
	// Completed counts calls the worker answered 200: executions.
	Completed int `json:"completed"`
}

// Thresholds are the limits Tally judges samples by.
type Thresholds struct {
	// Timeout is the ?timeout= of every request.
	Timeout time.Duration
	// Slack is how long past its deadline a request may stay unanswered
	// before it counts as a hang.
	Slack time.Duration
	// Late is the tolerance past the deadline beyond which an answer is
	// late (the controller's 504 comes at the deadline, give or take).
	Late time.Duration
	// Slow is the latency beyond which a 200 does not count as recovered.
	Slow time.Duration
	// DupBudget is the largest allowed share of extra executions among
	// accepted requests (0.001).
	DupBudget float64
	// Interval is the time between two sends (1 / rate).
	Interval time.Duration
	// Stable is how long every request must be good for the system to
	// count as recovered from that point on (2s).
	Stable time.Duration
	// RelapseBudget is the largest share of bad requests allowed after the
	// recovery point, and before the fault (0.01): a busy machine stalls
	// now and then, and the controller's admission control answers 429
	// to a short burst when it does.
	RelapseBudget float64
}

// Observed is what Run measured of one scenario besides its samples.
type Observed struct {
	// FaultAt is when the fault was injected (offset from the start).
	FaultAt time.Duration
	// RestartAt is when what the fault stopped was restarted within the
	// load (for the broker: when its start command returned); 0 if not.
	RestartAt time.Duration
	// Bound and RestartBound are the scenario's recovery bounds (see
	// Scenario); a negative Bound is not judged, and with a zero one every
	// request not good from the fault on is a relapse.
	Bound, RestartBound time.Duration
	// Outage is how long the broker was down (broker restart only).
	Outage time.Duration
	// Execs holds the proxy's counts by nonce.
	Execs map[string]Execs
	// Counted are deltas of the parts' counters over the scenario, by
	// metric name suffix (duplicates_total, dead_letters_total, ...).
	Counted map[string]float64
	// Injected counts records written straight into topics; DeadLettered
	// how many of them the dlq names (by the topic, partition and offset
	// headers of its dead letters).
	Injected, DeadLettered int
	// NotReady lists the parts that did not answer /readyz 200 or reported
	// stuck partitions after the scenario, with the reason.
	NotReady []string
	// Target is the worker the fault was aimed at. RequireTarget: it must
	// answer some requests after the fault (skew-behind); ForbidTarget: it
	// must answer none (a forged worker).
	Target                      string
	RequireTarget, ForbidTarget bool
	// Notes are remarks of the run worth reporting (e.g. a record the
	// broker refused).
	Notes []string
}

// Result is the verdict of one scenario.
type Result struct {
	Scenario string         `json:"scenario"`
	Fault    Fault          `json:"fault"`
	Sent     int            `json:"sent"`
	Accepted int            `json:"accepted"`
	ByStatus map[string]int `json:"by_status"`
	// BadBefore counts requests due more than Slow before the fault that
	// were not good: the scenario did not start from a healthy system.
	// Requests in flight at the fault count from the fault on.
	BadBefore int `json:"bad_before"`
	// BadAfter counts requests sent from the fault on that were not good;
	// Relapses those of them after the recovery point.
	BadAfter int `json:"bad_after"`
	Relapses int `json:"relapses"`
	Refused  int `json:"refused"`
	// NoWorkers counts 503 no_workers answers: at most one of four workers
	// is ever down, so each is a worker judged out of rotation wrongly.
	NoWorkers int `json:"no_workers"`
	Hangs     int `json:"hangs"`
	Late      int `json:"late"`
	// Executions is the number of executions the proxy saw of this
	// scenario's requests; Duplicates the executions beyond the first.
	Executions    int     `json:"executions"`
	Duplicates    int     `json:"duplicates"`
	DuplicateRate float64 `json:"duplicate_rate"`
	// AttemptDuplicates counts calls beyond the first that reached a
	// worker, executed to the end or not.
	AttemptDuplicates int `json:"attempt_duplicates"`
	// Unexecuted200 counts 200 answers of requests no worker executed.
	Unexecuted200 int                `json:"unexecuted_200"`
	Counted       map[string]float64 `json:"counted,omitempty"`
	// RecoverySec is from the fault until requests are good again (until
	// the restart, when there is one within the load); RestartRecoverySec
	// from the restart until they are good again.
	RecoverySec        float64 `json:"recovery_s"`
	BoundSec           float64 `json:"bound_s"`
	Restarted          bool    `json:"restarted"`
	RestartRecoverySec float64 `json:"restart_recovery_s,omitempty"`
	RestartBoundSec    float64 `json:"restart_bound_s,omitempty"`
	// Recovered is false when requests were still not good at the end.
	Recovered    bool    `json:"recovered"`
	OutageSec    float64 `json:"outage_s,omitempty"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	Injected     int     `json:"injected,omitempty"`
	DeadLettered int     `json:"dead_lettered,omitempty"`
	Target       string  `json:"target,omitempty"`
	// TargetServed counts answers from Target to requests sent after the
	// fault.
	TargetServed int      `json:"target_served,omitempty"`
	NotReady     []string `json:"not_ready,omitempty"`
	Notes        []string `json:"notes,omitempty"`
	Failures     []string `json:"failures,omitempty"`
	Pass         bool     `json:"pass"`
}

// Tally judges one scenario's samples against th and what was observed,
// and lists every failed assertion in Result.Failures.
func Tally(sc Scenario, samples []Sample, obs Observed, th Thresholds) Result {
	r := Result{Scenario: sc.Name, Fault: sc.Fault, Sent: len(samples), ByStatus: map[string]int{},
		Counted: obs.Counted, Injected: obs.Injected, DeadLettered: obs.DeadLettered, Target: obs.Target,
		NotReady: obs.NotReady, Notes: obs.Notes, BoundSec: obs.Bound.Seconds(), OutageSec: obs.Outage.Seconds(),
		Restarted: obs.RestartAt > 0, RestartBoundSec: obs.RestartBound.Seconds()}
	var lat []time.Duration
	// The bad requests of each phase: [fault, restart) and [restart, end).
	var bad1, bad2 []time.Duration
	var lastSent time.Duration
	before := 0
	for _, s := range samples {
		r.ByStatus[s.StatusKey()]++
		lastSent = max(lastSent, s.Intended)
		if s.Reason == ReasonNoWorkers {
			r.NoWorkers++
		}
		switch s.Err {
		case ErrRefused:
			r.Refused++
		case ErrHang:
			r.Hangs++
		}
		if s.Err != ErrRefused && !(s.Status >= 400 && s.Status < 500) {
			r.Accepted++
		}
		if s.Err == "" && s.Done-s.Sent > th.Timeout+th.Late {
			r.Late++
		}
		if s.Err == "" && s.Status == 200 {
			lat = append(lat, s.Latency())
		}
		good := s.Good(th.Slow)
		// A request that should have been answered before the fault
		// belongs before it; one in flight at the fault belongs to it.
		if s.Intended+th.Slow < obs.FaultAt {
			before++
			if !good {
				r.BadBefore++
			}
		} else {
			switch {
			case good:
			case r.Restarted && s.Intended >= obs.RestartAt:
				r.BadAfter++
				bad2 = append(bad2, s.Intended)
			default:
				r.BadAfter++
				bad1 = append(bad1, s.Intended)
			}
			if obs.Target != "" && s.Worker == obs.Target {
				r.TargetServed++
			}
		}
		e := obs.Execs[s.Nonce]
		r.Executions += e.Completed
		r.Duplicates += max(0, e.Completed-1)
		r.AttemptDuplicates += max(0, e.Attempts-1)
		if s.Err == "" && s.Status == 200 && e.Completed == 0 {
			r.Unexecuted200++
		}
	}
	if r.Accepted > 0 {
		r.DuplicateRate = float64(r.Duplicates) / float64(r.Accepted)
	}
	end := lastSent + th.Interval
	end1 := end
	if r.Restarted {
		end1 = obs.RestartAt
	}
	rec1, ok1, relapses1 := recoveryPoint(bad1, obs.FaultAt, end1, th)
	if obs.Bound == 0 { // no time to recover: every bad request is a relapse
		rec1, ok1, relapses1 = 0, true, len(bad1)
	}
	r.RecoverySec, r.Recovered, r.Relapses = rec1.Seconds(), ok1 || r.Restarted, relapses1
	if r.Restarted {
		rec2, ok2, relapses2 := recoveryPoint(bad2, obs.RestartAt, end, th)
		r.RestartRecoverySec, r.Recovered, r.Relapses = rec2.Seconds(), ok2, r.Relapses+relapses2
	}
	after := r.Sent - before
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r.P50Ms = ms(quantile(lat, 0.50))
		r.P99Ms = ms(quantile(lat, 0.99))
		r.MaxMs = ms(lat[len(lat)-1])
	}

	fail := func(format string, args ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, args...)) }
	if r.Sent == 0 {
		fail("no request was sent")
	}
	if r.Hangs > 0 {
		fail("%d request(s) unanswered %v past their deadline", r.Hangs, th.Slack)
	}
	if r.Late > 0 {
		fail("%d answer(s) came more than %v after their deadline", r.Late, th.Late)
	}
	if r.DuplicateRate > th.DupBudget {
		fail("%d duplicate execution(s) among %d accepted requests (%.3f%% > %.3f%%)",
			r.Duplicates, r.Accepted, 100*r.DuplicateRate, 100*th.DupBudget)
	}
	if r.NoWorkers > 0 {
		fail("%d request(s) answered 503 %s with at most one worker down", r.NoWorkers, ReasonNoWorkers)
	}
	if r.Unexecuted200 > 0 {
		fail("%d request(s) answered 200 that no worker executed", r.Unexecuted200)
	}
	if float64(r.BadBefore) > th.RelapseBudget*float64(before) {
		fail("%d of %d request(s) before the fault were not answered 200 within %v: the system was not healthy",
			r.BadBefore, before, th.Slow)
	}
	if !r.Recovered {
		fail("not recovered: no %v without a request not answered 200 within %v before the load ended", th.Stable, th.Slow)
	} else if float64(r.Relapses) > th.RelapseBudget*float64(after) {
		fail("%d request(s) after the recovery were not answered 200 within %v, more than %.1f%% of the %d since the fault",
			r.Relapses, th.Slow, 100*th.RelapseBudget, after)
	}
	if obs.Bound >= 0 && r.RecoverySec > r.BoundSec {
		fail("recovery took %.1fs, bound %.1fs", r.RecoverySec, r.BoundSec)
	}
	if r.Restarted && r.RestartRecoverySec > r.RestartBoundSec {
		fail("recovery after the restart took %.1fs, bound %.1fs", r.RestartRecoverySec, r.RestartBoundSec)
	}
	if len(r.NotReady) > 0 {
		fail("part(s) not ready or stuck afterwards: %v", r.NotReady)
	}
	if r.DeadLettered < r.Injected {
		fail("%d of %d injected record(s) not dead-lettered", r.Injected-r.DeadLettered, r.Injected)
	}
	if obs.RequireTarget && r.TargetServed == 0 {
		fail("worker %s served no request after the fault", obs.Target)
	}
	if obs.ForbidTarget && r.TargetServed > 0 {
		fail("%d request(s) were placed on %s", r.TargetServed, obs.Target)
	}
	r.Pass = len(r.Failures) == 0
	return r
}

// recoveryPoint returns, for the bad requests of a phase [start, end) in
// order, how long from start until a stretch of th.Stable without one
// began, whether there was such a stretch, and how many bad requests
// came after it began (relapses).
func recoveryPoint(bad []time.Duration, start, end time.Duration, th Thresholds) (time.Duration, bool, int) {
	from := start // the first moment after the last bad request seen
	for i, b := range bad {
		if b-from >= th.Stable {
			return from - start, true, len(bad) - i
		}
		from = max(from, b+th.Interval)
	}
	if end-from >= th.Stable {
		return from - start, true, 0
	}
	return from - start, false, 0
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
