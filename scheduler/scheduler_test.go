package scheduler

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

func waitRotation(t *testing.T, s *Scheduler, ids ...string) {
	t.Helper()
	eventually(t, fmt.Sprintf("workers %v in rotation", ids), func() bool {
		ok := true
		inspect(t, s, func(st *state) {
			for _, id := range ids {
				if w := st.workers[id]; w == nil || w.rot != rotActive {
					ok = false
				}
			}
		})
		return ok
	})
}

func idleCount(t *testing.T, s *Scheduler, worker, fn string) int {
	var n int
	inspect(t, s, func(st *state) { n = st.idle.IdleCount(worker, fn) })
	return n
}

func TestConfigValidate(t *testing.T) {
	good := Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"no brokers":  {},
		"bad policy":  {Kafka: kafkaconn.Config{Brokers: good.Kafka.Brokers}, Policy: "nope"},
		"bad pending": {Kafka: kafkaconn.Config{Brokers: good.Kafka.Brokers}, Pending: "lifo"},
		"neg cap":     {Kafka: kafkaconn.Config{Brokers: good.Kafka.Brokers}, PendingCap: -1},
		"bad id":      {Kafka: kafkaconn.Config{Brokers: good.Kafka.Brokers}, ID: "a b"},
		"tiny tick":   {Kafka: kafkaconn.Config{Brokers: good.Kafka.Brokers}, Tick: time.Microsecond},
	} {
		if name == "bad pending" {
			if _, err := New(c); err == nil {
				t.Errorf("%s: New accepted it", name)
			}
			continue
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d := good.WithDefaults()
	if d.Policy != "pull-wait" || d.PendingCap != 10000 || d.HeartbeatTimeout != 3*time.Second ||
		d.DefaultTimeout != 5*time.Minute || d.TimeoutMargin != 2*time.Second || d.ID == "" {
		t.Errorf("defaults: %+v", d)
	}
}

// A completion makes the next arrival of the function warm on the same
// worker; an eviction and keep-alive expiry take the idle entry away.
func TestWarmAfterCompletionEvictionAndExpiry(t *testing.T) {
	e := newEnv(t, 2)
	b1, b2 := e.bridge("w1", 0, false), e.bridge("w2", 0, false)
	cfg := e.config("s1")
	cfg.PolicyConfig.KeepAlive = 30 * time.Second
	cfg.HeartbeatTimeout = time.Hour // the clock jumps below; keep workers in
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1", "w2")

	step := func(wantWarm bool, on *bridge) *bridge {
		t.Helper()
		id := e.arrive("f", "", time.Time{})
		br, a := waitAssigned(t, id, b1, b2)
		if a.Warm != wantWarm {
			t.Fatalf("assignment %s warm=%v, want %v", id, a.Warm, wantWarm)
		}
		if on != nil && br != on {
			t.Fatalf("warm assignment went to %s, want %s", br.id, on.id)
		}
		if a.Scheduler != "s1" || a.WorkerURL == "" || a.Function != "f" {
			t.Fatalf("assignment fields: %+v", a)
		}
		br.complete(e.ctx, a, true)
		eventually(t, "idle entry after completion", func() bool { return idleCount(t, s, br.id, "f") == 1 })
		return br
	}
	on := step(false, nil)
	on = step(true, on)
	on.evict("f")
	eventually(t, "eviction applied", func() bool { return idleCount(t, s, on.id, "f") == 0 })
	on = step(false, nil)
	e.clock.Advance(31 * time.Second)
	step(false, nil)

	var inflight int
	inspect(t, s, func(st *state) { inflight = st.pol.InFlight("w1") + st.pol.InFlight("w2") + len(st.jobs) })
	if inflight != 0 {
		t.Fatalf("books not balanced: %d left", inflight)
	}
	if got := metricValue(t, s.m.decisions.WithLabelValues(policy.NamePullWait, OutcomeWarm)); got != 1 {
		t.Errorf("warm decisions = %v, want 1", got)
	}
	if got := metricValue(t, s.m.decisions.WithLabelValues(policy.NamePullWait, OutcomeFallback)); got != 3 {
		t.Errorf("fallback decisions = %v, want 3", got)
	}
}

// Every arrival is assigned exactly once, and every offset gets committed.
func TestEveryArrivalAssignedOnce(t *testing.T) {
	e := newEnv(t, 4)
	b1, b2 := e.bridge("w1", 0, true), e.bridge("w2", 0, true)
	cfg := e.config("s1")
	cfg.Listen = "127.0.0.1:0"
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1", "w2")
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.arrive(fmt.Sprintf("fn-%d", i%10), "", time.Time{})
	}
	eventually(t, "all assigned", func() bool { return len(b1.counts())+len(b2.counts()) >= n })
	c1, c2 := b1.counts(), b2.counts()
	for _, id := range ids {
		if c1[id]+c2[id] != 1 {
			t.Fatalf("arrival %s assigned %d times", id, c1[id]+c2[id])
		}
	}
	adm := kadm.NewClient(e.prod.Client())
	eventually(t, "offsets committed", func() bool {
		lags, err := adm.Lag(e.ctx, s.Group())
		if err != nil {
			return false
		}
		l := lags[s.Group()]
		return l.Error() == nil && l.Lag.TotalByTopic()[e.names.Arrivals()].Lag == 0 &&
			l.Lag.TotalByTopic()[e.names.Arrivals()].Topic != ""
	})
	eventually(t, "books empty", func() bool {
		var left int
		inspect(t, s, func(st *state) { left = len(st.jobs) + st.pend.Len() + len(st.heap) })
		return left == 0
	})
	// Metrics and health on the HTTP server.
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := new(strings.Builder)
	if _, err := fmt.Fprint(body, readAll(t, resp)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pullsched_scheduler_decisions_total", "pullsched_scheduler_arrival_to_assignment_seconds",
		"pullsched_scheduler_decision_seconds", "pullsched_scheduler_pending_depth", "pullsched_scheduler_inflight"} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		r, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Errorf("%s = %d", path, r.StatusCode)
		}
	}
	warm := metricValue(t, s.m.decisions.WithLabelValues(policy.NamePullWait, OutcomeWarm))
	fall := metricValue(t, s.m.decisions.WithLabelValues(policy.NamePullWait, OutcomeFallback))
	if warm+fall != n {
		t.Errorf("placed decisions = %v, want %d", warm+fall, n)
	}
}

func readAll(t *testing.T, r *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// Pending overflow answers 429, pending deadlines and assignment timeouts
// answer 504 and free the slot, and no workers answers 503.
func TestRejectionsAndTimeouts(t *testing.T) {
	e := newEnv(t, 1)
	res := e.results("c1")
	cfg := e.config("s1")
	cfg.PendingCap = 2
	cfg.HeartbeatTimeout = time.Hour
	br := e.bridge("w1", 1, false)
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1")

	now := e.clock.Now()
	a1 := e.arrive("f", "c1", now.Add(10*time.Second))
	waitAssigned(t, a1, br)
	a2 := e.arrive("f", "c1", now.Add(5*time.Second))
	a3 := e.arrive("g", "c1", now.Add(5*time.Second))
	eventually(t, "two pending", func() bool {
		var n int
		inspect(t, s, func(st *state) { n = st.pend.Len() })
		return n == 2
	})
	a4 := e.arrive("f", "c1", now.Add(5*time.Second))
	if r := res.wait(t, a4); r.Status != http.StatusTooManyRequests || r.Reason != topics.ReasonOverloaded || r.Source != "scheduler" {
		t.Fatalf("overflow result: %+v", r)
	}

	e.clock.Advance(6 * time.Second)
	for _, id := range []string{a2, a3} {
		if r := res.wait(t, id); r.Status != http.StatusGatewayTimeout || r.Reason != topics.ReasonTimeout {
			t.Fatalf("pending timeout result: %+v", r)
		}
	}
	if res.get(a1) != nil {
		t.Fatal("assigned arrival answered before its timeout")
	}
	e.clock.Advance(7 * time.Second) // past a1's deadline plus the 2s margin
	if r := res.wait(t, a1); r.Status != http.StatusGatewayTimeout || r.Reason != topics.ReasonTimeout || r.Worker != "w1" {
		t.Fatalf("assignment timeout result: %+v", r)
	}
	eventually(t, "slot released", func() bool {
		var n int
		inspect(t, s, func(st *state) { n = st.pol.InFlight("w1") })
		return n == 0
	})
	// The freed slot takes new work (the bridge still thinks it holds a1,
	// so tell the scheduler nothing else is running there).
	br.mu.Lock()
	br.inflight = 0
	br.mu.Unlock()
	a5 := e.arrive("f", "c1", time.Time{})
	waitAssigned(t, a5, br)
	if got := metricValue(t, s.m.timeouts.WithLabelValues("assigned")); got != 1 {
		t.Errorf("assigned timeouts = %v", got)
	}
	if got := metricValue(t, s.m.timeouts.WithLabelValues("pending")); got != 2 {
		t.Errorf("pending timeouts = %v", got)
	}

	// A re-delivered arrival (same id) is not assigned again.
	dup := &topics.Arrival{ID: a5, Function: "f", Reply: "c1"}
	if err := e.prod.Publish(e.ctx, e.names.Arrivals(), dup); err != nil {
		t.Fatal(err)
	}
	eventually(t, "duplicate counted", func() bool {
		return metricValue(t, s.m.duplicates.WithLabelValues("redelivered")) == 1
	})
	if c := br.counts()[a5]; c != 1 {
		t.Fatalf("duplicate assigned: %d", c)
	}
}

func TestNoWorkers(t *testing.T) {
	e := newEnv(t, 1)
	res := e.results("c1")
	s, _ := e.start(e.config("s1"))
	id := e.arrive("f", "c1", time.Time{})
	if r := res.wait(t, id); r.Status != http.StatusServiceUnavailable || r.Reason != topics.ReasonNoWorkers {
		t.Fatalf("result: %+v", r)
	}
	if got := metricValue(t, s.m.decisions.WithLabelValues(policy.NamePullWait, OutcomeRejected)); got != 1 {
		t.Errorf("rejected decisions = %v", got)
	}
}

// A silent worker leaves the rotation, a draining one gets nothing new, and
// one that comes back re-enters.
func TestWorkerRotation(t *testing.T) {
	e := newEnv(t, 1)
	cfg := e.config("s1")
	b1, b2 := e.bridge("w1", 0, true), e.bridge("w2", 0, true)
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1", "w2")

	b2.silent.Store(true)
	// Two jumps, each shorter than the heartbeat timeout: a longer one
	// would look like a gap in which this scheduler could not read the
	// workers topic, and that silence is not held against workers.
	e.clock.Advance(2 * time.Second)
	jumped := e.clock.Now()
	eventually(t, "workers topic read past the first jump", func() bool {
		var heard bool
		inspect(t, s, func(st *state) { heard = !st.feed.heard.Before(jumped) })
		return heard
	})
	e.clock.Advance(2 * time.Second) // w1 heartbeats on; w2 is now silent too long
	jumped = e.clock.Now()
	eventually(t, "w2 out, w1 heard from since the jump", func() bool {
		var out, in bool
		inspect(t, s, func(st *state) {
			out = st.workers["w2"].rot == rotNone
			in = st.workers["w1"].rot == rotActive && !st.workers["w1"].at.Before(jumped)
		})
		return out && in
	})
	for range 10 {
		id := e.arrive(fmt.Sprintf("f%d", time.Now().UnixNano()%7), "", time.Time{})
		if br, _ := waitAssigned(t, id, b1, b2); br != b1 {
			t.Fatal("silent worker got work")
		}
	}
	b2.silent.Store(false)
	waitRotation(t, s, "w2")

	b1.healthy.Store(false) // unhealthy: drained
	eventually(t, "w1 draining", func() bool {
		var r rotation
		inspect(t, s, func(st *state) { r = st.workers["w1"].rot })
		return r == rotDraining
	})
	for range 10 {
		id := e.arrive("f", "", time.Time{})
		if br, _ := waitAssigned(t, id, b1, b2); br != b2 {
			t.Fatal("draining worker got work")
		}
	}
	b1.healthy.Store(true)
	waitRotation(t, s, "w1")
}

// A scheduler that dies with its last offsets uncommitted is replaced; every
// arrival reaches an assignment once: the replacement reads what the dead
// one assigned after its last commit and does not place it again (before,
// those arrivals were all duplicated).
func TestCrashTakeover(t *testing.T) {
	e := newEnv(t, 2)
	br := e.bridge("w1", 0, true)
	group := e.names.Prefix + "scheduler"
	var block atomic.Bool
	c := e.b.Cluster()
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.OffsetCommitRequest)
		if !block.Load() || r.Group != group {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range r.Topics {
			t := kmsg.NewOffsetCommitResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewOffsetCommitResponseTopicPartition()
				p.Partition = rp.Partition
				p.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp, nil, true
	})

	a, stopA := e.start(e.config("a"))
	waitRotation(t, a, "w1")
	var first, second []string
	for i := range 20 {
		first = append(first, e.arrive(fmt.Sprintf("f%d", i%4), "", time.Time{}))
	}
	for _, id := range first {
		waitAssigned(t, id, br)
	}
	adm := kadm.NewClient(e.prod.Client())
	eventually(t, "first wave committed", func() bool {
		lags, err := adm.Lag(e.ctx, group)
		if err != nil {
			return false
		}
		l := lags[group]
		tl := l.Lag.TotalByTopic()[e.names.Arrivals()]
		return l.Error() == nil && tl.Topic != "" && tl.Lag == 0
	})
	block.Store(true) // from now on the scheduler's commits are lost
	for i := range 20 {
		second = append(second, e.arrive(fmt.Sprintf("f%d", i%4), "", time.Time{}))
	}
	for _, id := range second {
		waitAssigned(t, id, br)
	}
	stopA()
	block.Store(false)

	cfgB := e.config("b")
	cfgB.Listen = "127.0.0.1:0"
	b, _ := e.start(cfgB)
	waitRotation(t, b, "w1")
	eventually(t, "second wave read again and found finished", func() bool {
		return metricText(t, b, fmt.Sprintf(`pullsched_scheduler_takeover_total{outcome="finished"} %d`, len(second)))
	})
	third := e.arrive("f0", "", time.Time{})
	waitAssigned(t, third, br)
	cs := br.counts()
	dups := 0
	for _, id := range first {
		if cs[id] != 1 {
			t.Fatalf("committed arrival %s assigned %d times", id, cs[id])
		}
	}
	for _, id := range second {
		dups += cs[id] - 1
	}
	if dups != 0 {
		t.Fatalf("duplicates = %d of the %d uncommitted arrivals, want 0", dups, len(second))
	}
	if cs[third] != 1 {
		t.Fatalf("new arrival assigned %d times", cs[third])
	}
}

// Two replicas split the partitions, no arrival is assigned twice, and the
// idle state of a replica that leaves is rebuilt by the other one.
func TestTwoReplicas(t *testing.T) {
	e := newEnv(t, 4)
	b1, b2 := e.bridge("w1", 0, true), e.bridge("w2", 0, true)
	a, _ := e.start(e.config("a"))
	b, stopB := e.start(e.config("b"))
	owned := func(s *Scheduler) map[int32]bool {
		out := map[int32]bool{}
		inspect(t, s, func(st *state) {
			for p := range st.owned {
				out[p] = true
			}
		})
		return out
	}
	eventually(t, "partitions split", func() bool {
		oa, ob := owned(a), owned(b)
		if len(oa) == 0 || len(ob) == 0 || len(oa)+len(ob) != 4 {
			return false
		}
		for p := range oa {
			if ob[p] {
				return false
			}
		}
		return true
	})
	waitRotation(t, a, "w1", "w2")
	waitRotation(t, b, "w1", "w2")
	const n = 120
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.arrive(fmt.Sprintf("fn-%d", i%12), "", time.Time{})
	}
	eventually(t, "all assigned", func() bool { return len(b1.counts())+len(b2.counts()) >= n })
	byFn := map[string]string{} // function -> replica that placed it
	for _, br := range []*bridge{b1, b2} {
		br.mu.Lock()
		for _, x := range br.got {
			if r, ok := byFn[x.Function]; ok && r != x.Scheduler {
				t.Errorf("function %s placed by %s and %s", x.Function, r, x.Scheduler)
			}
			byFn[x.Function] = x.Scheduler
		}
		br.mu.Unlock()
	}
	c1, c2 := b1.counts(), b2.counts()
	for _, id := range ids {
		if c1[id]+c2[id] != 1 {
			t.Fatalf("arrival %s assigned %d times", id, c1[id]+c2[id])
		}
	}
	var fnB string
	for f, r := range byFn {
		if r == "b" {
			fnB = f
			break
		}
	}
	if fnB == "" {
		t.Fatal("replica b placed nothing")
	}
	// Let b see its completions, then take it away.
	eventually(t, "b idle state", func() bool {
		return idleCount(t, b, "w1", fnB)+idleCount(t, b, "w2", fnB) > 0
	})
	stopB()
	eventually(t, "a owns everything", func() bool { return len(owned(a)) == 4 })
	if got := idleCount(t, a, "w1", fnB) + idleCount(t, a, "w2", fnB); got == 0 {
		t.Fatalf("idle state of %s not rebuilt on a", fnB)
	}
	id := e.arrive(fnB, "", time.Time{})
	if _, x := waitAssigned(t, id, b1, b2); !x.Warm || x.Scheduler != "a" {
		t.Fatalf("after takeover: %+v, want a warm assignment by a", x)
	}
	if metricValue(t, a.m.rebuilt) == 0 {
		t.Error("rebuild metric not counted")
	}
}

// The pull policy's Forget drops a function's idle entries and nothing else.
func TestPullForget(t *testing.T) {
	p, err := policy.New("pull", policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p.WorkerJoined(policy.WorkerInfo{ID: "w"})
	it := p.(policy.IdleTracker)
	now := time.Now()
	it.Idle("w", "f", now)
	it.Idle("w", "g", now)
	p.(policy.IdleForgetter).Forget("f")
	p.(policy.IdleForgetter).Forget("unknown")
	if it.IdleCount("w", "f") != 0 || it.IdleCount("w", "g") != 1 {
		t.Fatalf("after Forget: f=%d g=%d", it.IdleCount("w", "f"), it.IdleCount("w", "g"))
	}
	if d := p.Pick(policy.Request{Function: "g", Now: now}); !d.Warm {
		t.Fatal("g lost its idle entry")
	}
}

var _ = context.Background
