package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Fault is what a scenario does to the running system.
type Fault string

// The faults, one per scenario.
const (
	// FaultNone injects nothing: the baseline every other scenario is
	// measured against.
	FaultNone Fault = "none"
	// FaultKillScheduler SIGKILLs one of the two scheduler replicas and
	// restarts it after Down; its partitions must move to the survivor.
	FaultKillScheduler Fault = "kill-scheduler"
	// FaultKillController SIGKILLs the controller (the only ingress) and
	// restarts it after Down; in-flight clients see their connection drop.
	FaultKillController Fault = "kill-controller"
	// FaultKillSidecar SIGKILLs one worker's invoker sidecar and restarts
	// it after Down; re-delivered assignments must not run twice.
	FaultKillSidecar Fault = "kill-sidecar"
	// FaultKillWorker SIGKILLs one simulated worker and restarts it after
	// Down (cold: its sandboxes are gone).
	FaultKillWorker Fault = "kill-workersim"
	// FaultBrokerRestart runs the broker stop command, waits Down, and runs
	// the start command. Only when both commands are configured.
	FaultBrokerRestart Fault = "broker-restart"
	// FaultOversized writes a record of about 1 MB straight into every
	// partition of every consumed topic (arrivals, worker-events, workers,
	// every invoker.<worker>, the controller's results).
	FaultOversized Fault = "oversized-records"
	// FaultMalformed writes malformed records of several shapes into every
	// partition of every consumed topic.
	FaultMalformed Fault = "malformed-records"
	// FaultSkewAhead SIGKILLs one sidecar and writes its worker's last
	// heartbeat again stamped 60 s ahead: the worker must still leave the
	// rotation within the heartbeat timeout. The sidecar is restarted when
	// the window ends.
	FaultSkewAhead Fault = "skew-ahead-60s"
	// FaultSkewBehind re-writes every heartbeat of one live worker stamped
	// 3 s behind, as a bridge whose clock lags would: the worker must stay
	// in rotation and keep being served.
	FaultSkewBehind Fault = "skew-behind-3s"
	// FaultForgedWorker writes, every second, a well-formed record of a
	// worker no bridge registered (active, healthy, unlimited capacity, an
	// address where nothing listens, no bridge named): no request may be
	// placed on it.
	FaultForgedWorker Fault = "forged-worker"
	// FaultForgedBridge is FaultForgedWorker with the record naming a
	// bridge that never ran: what a writer who knows the record format
	// can do without the workers topic being guarded by ACLs. Long form
	// only: pullsched believes such records by design (docs/RELIABILITY.md).
	FaultForgedBridge Fault = "forged-bridge"
)

// Scenario is one row of the suite: a fault injected under load.
type Scenario struct {
	// Name identifies the scenario (--scenarios selects by it).
	Name string `json:"name"`
	// Fault is what is done at the fault time.
	Fault Fault `json:"fault"`
	// Before is how long load runs before the fault.
	Before time.Duration `json:"before"`
	// Window is how long load runs from the fault on.
	Window time.Duration `json:"window"`
	// Down is how long a killed part (or the broker) stays down before it
	// is restarted; for FaultSkewAhead the sidecar stays down for the
	// whole window.
	Down time.Duration `json:"down"`
	// Bound is the recovery bound: from the fault until every request sent
	// (before the restart, if the part is restarted within the window) is
	// answered 200 within the slow threshold. Negative: not judged (the
	// broker's outage, during which 503s are the right answer).
	Bound time.Duration `json:"bound"`
	// RestartBound bounds the second recovery of a scenario that restarts
	// what it stopped within the window: from the restart (for the broker,
	// from its start command returning) until requests are good again.
	RestartBound time.Duration `json:"restart_bound,omitempty"`
	// Doc says in one line what is done and what must hold.
	Doc string `json:"doc"`
}

// Form is the length of a run: the short form is CI's, each scenario a few
// seconds; the long form is the one issue 13 describes, run by hand.
type Form struct {
	// Short selects the CI form.
	Short bool
	// BrokerRestart includes FaultBrokerRestart (the run was told how to
	// stop and start the broker).
	BrokerRestart bool
}

// HeartbeatTimeout is the schedulers' heartbeat timeout the suite starts
// them with (the scheduler's default), on which several bounds rest.
const HeartbeatTimeout = 3 * time.Second

// TakeoverBound is how soon a scheduler replica's partitions must be
// served by the survivor after a SIGKILL (issue 13, item 5).
const TakeoverBound = 3 * time.Second

// Scenarios returns the scenario table of a form, in the order they run.
func Scenarios(f Form) []Scenario {
	pick := func(short, long time.Duration) time.Duration {
		if f.Short {
			return short
		}
		return long
	}
	before := pick(2*time.Second, 10*time.Second)
	window := pick(10*time.Second, 60*time.Second)
	// Out of rotation within the heartbeat timeout, plus the answers of
	// what was placed in the meantime.
	rotation := HeartbeatTimeout + 2*time.Second
	brokerDown := pick(5*time.Second, 40*time.Second)
	// A restarted part is ready and serving within this.
	restart := 5 * time.Second
	s := []Scenario{
		{Name: "baseline", Fault: FaultNone, Before: before, Window: window,
			Doc: "no fault: every request answered 200"},
		{Name: "kill-scheduler", Fault: FaultKillScheduler, Before: before, Window: window,
			Down: pick(4*time.Second, 15*time.Second), Bound: TakeoverBound, RestartBound: restart,
			Doc: "SIGKILL one of two scheduler replicas, restart it after Down: the survivor takes its partitions within 3 s"},
		{Name: "kill-controller", Fault: FaultKillController, Before: before, Window: window,
			Down: pick(time.Second, 5*time.Second), Bound: -1, RestartBound: restart,
			Doc: "SIGKILL the controller (the only ingress), restart it after Down: refused connections while it is down, never a hang; serving within 5 s of the restart"},
		{Name: "kill-sidecar", Fault: FaultKillSidecar, Before: before, Window: window,
			Down: pick(2*time.Second, 10*time.Second), Bound: rotation, RestartBound: restart,
			Doc: "SIGKILL one invoker sidecar, restart it after Down: what its predecessor finished does not run again"},
		{Name: "kill-workersim", Fault: FaultKillWorker, Before: before, Window: window,
			Down: pick(2*time.Second, 10*time.Second), Bound: rotation, RestartBound: restart,
			Doc: "SIGKILL one simulated worker, restart it after Down: its calls fail fast and it leaves the rotation"},
	}
	s = append(s,
		Scenario{Name: "oversized-records", Fault: FaultOversized, Before: before, Window: window, Bound: time.Second,
			Doc: "a ~1 MB record on every partition of every consumed topic: dead-lettered, nothing else lost"},
		Scenario{Name: "malformed-records", Fault: FaultMalformed, Before: before, Window: window, Bound: time.Second,
			Doc: "malformed records of every shape on every partition of every consumed topic: dead-lettered, nothing else lost"},
		Scenario{Name: "skew-ahead-60s", Fault: FaultSkewAhead, Before: before, Window: window, Bound: rotation,
			Doc: "SIGKILL a sidecar and re-write its last heartbeat stamped 60 s ahead: the worker still leaves the rotation"},
		Scenario{Name: "skew-behind-3s", Fault: FaultSkewBehind, Before: before, Window: window, Bound: time.Second,
			Doc: "every heartbeat of a live worker re-written 3 s behind: it stays in rotation and keeps serving"},
		Scenario{Name: "forged-worker", Fault: FaultForgedWorker, Before: before, Window: window, Bound: time.Second,
			Doc: "a well-formed worker record naming no bridge, every second: nothing is placed on it"},
	)
	if !f.Short {
		s = append(s, Scenario{Name: "forged-bridge", Fault: FaultForgedBridge, Before: before, Window: window, Bound: time.Second,
			Doc: "a well-formed worker record naming a bridge that never ran, every second: nothing should be placed on it"})
	}
	if f.BrokerRestart {
		// Last: a restarted JVM broker is slow for a while, which would
		// show in the next scenario. The window ends early, RestartBound
		// and 10 s after the start command returns (it includes the time
		// the stop and start commands take).
		s = append(s, Scenario{Name: "broker-restart", Fault: FaultBrokerRestart, Before: before,
			Window: brokerDown + 3*time.Minute, Down: brokerDown, Bound: -1, RestartBound: 10 * time.Second,
			Doc: "stop the broker, start it after Down: answers (503) during the outage, 200s within 10 s of its return"})
	}
	return s
}

// Select keeps the scenarios named in names (comma-separated; empty keeps
// all), in table order, and fails on a name the table does not have.
func Select(all []Scenario, names string) ([]Scenario, error) {
	if strings.TrimSpace(names) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []Scenario
	for _, s := range all {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		var unknown, known []string
		for n := range want {
			unknown = append(unknown, n)
		}
		sort.Strings(unknown)
		for _, s := range all {
			known = append(known, s.Name)
		}
		return nil, fmt.Errorf("chaos: unknown scenario(s) %v (this form has %v)", unknown, known)
	}
	return out, nil
}
