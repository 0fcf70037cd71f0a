package owbridge

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// checkForwarded asserts what every ack the controller gets must be: the
// facade's instance and no system error.
func checkForwarded(t *testing.T, a *Ack) {
	t.Helper()
	if a.Instance == nil || a.Instance.Instance != 0 || a.Instance.UserMemory != 1024*GB {
		t.Fatalf("ack instance %+v, want the facade's", a.Instance)
	}
	if a.IsSystemError == nil || *a.IsSystemError {
		t.Fatalf("ack isSystemError %v, want false", a.IsSystemError)
	}
}

// TestWarmRouting runs a sequence of activations of one action through
// the bridge, with a 1.0 and a 2.0 invoker: pull sends all but the first
// to the container the first one warmed, and every ack reaches the
// controller as the facade's.
func TestWarmRouting(t *testing.T) {
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.Listen = "127.0.0.1:0" }})
	inv0 := e.startInvoker(0, false)
	inv1 := e.startInvoker(1, true)
	e.waitRotation(2)
	const n = 12
	for i := range n {
		m := e.ctl.activation("guest", "hello", i%2 == 0, map[string]int{"i": i})
		sent := e.ctl.send(m)
		a, _ := e.ctl.ack(m.ActivationID)
		checkForwarded(t, a)
		if a.TransID.ID != m.TransID.ID {
			t.Fatalf("ack transid %+v, want %+v", a.TransID, m.TransID)
		}
		got0, _ := inv0.ran(m.ActivationID)
		got1, _ := inv1.ran(m.ActivationID)
		if !bytes.Equal(got0, sent) && !bytes.Equal(got1, sent) {
			t.Fatalf("activation %d reached no invoker byte for byte", i)
		}
	}
	c0, w0, t0 := inv0.stats()
	c1, w1, t1 := inv1.stats()
	if t0+t1 != n || c0+c1 != 1 || w0+w1 != n-1 {
		t.Fatalf("invoker0 %d cold %d warm, invoker1 %d cold %d warm: want 1 cold and %d warm in all", c0, w0, c1, w1, n-1)
	}
	eventually(t, "completions", func() bool { return e.bridge.Counts().Completions == n })
	cnt := e.bridge.Counts()
	if cnt.Arrivals != n || cnt.Assigned != n || cnt.Synthetic != 0 {
		t.Fatalf("counts %+v", cnt)
	}
	// The metrics say the same; the limits the acks carried are learned.
	resp, err := http.Get("http://" + e.bridge.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"pullsched_openwhisk_completions_total 12", "pullsched_openwhisk_assigned_total 12",
		"pullsched_openwhisk_live_invokers 2", "pullsched_openwhisk_dead_letters_total 0"} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	fn := FunctionKey("guest", FullyQualifiedEntityName{Path: "guest", Name: "hello", Version: "0.0.1"})
	if mem, limit := e.bridge.limitsOf(fn); mem != 384 || limit != 90*time.Second {
		t.Errorf("learned limits %d MB, %s; want 384 MB, 1m30s", mem, limit)
	}
	// The facade pings in the 2.0 shape, as invoker0, enabled.
	e.ctl.mu.Lock()
	pings := append([][]byte(nil), e.ctl.pings...)
	e.ctl.mu.Unlock()
	if len(pings) == 0 {
		t.Fatal("no facade ping")
	}
	p, err := DecodePing(pings[0])
	if err != nil || p.Name.Instance != 0 || !p.Enabled() || p.Name.Tags == nil || p.Name.UserMemory != 1024*GB {
		t.Fatalf("facade ping %s (%v)", pings[0], err)
	}
}

// TestRejectionAnsweredBeforeForcedAck: with no invoker, pullsched
// rejects at once; the controller gets a whisk-error activation for a
// blocking activation and an ack shrunk to the id for a non-blocking one,
// transid copied, long before its forced ack.
func TestRejectionAnsweredBeforeForcedAck(t *testing.T) {
	e := newEnv(t, envOpts{})
	blocking := e.ctl.activation("guest", "pkg/lonely", true, "x")
	blocking.TransID.ExtraLogging = true
	blocking.TransID.Parent = &TransactionID{ID: "root", Start: 5}
	nonblocking := e.ctl.activation("guest", "lonely", false, "y")
	start := time.Now()
	e.ctl.send(blocking)
	e.ctl.send(nonblocking)
	a, raw := e.ctl.ack(blocking.ActivationID)
	checkForwarded(t, a)
	if a.Kind != AckCombined || a.Activation == nil || a.Activation.Response.StatusCode != StatusWhiskError {
		t.Fatalf("blocking answer %s", raw)
	}
	if !strings.Contains(string(a.Activation.Response.Result), "no_workers") || a.Activation.Name != "lonely" ||
		a.Activation.Namespace != "guest" || a.Activation.Subject != "subject-guest" {
		t.Fatalf("blocking answer %s", raw)
	}
	tid, _ := json.Marshal(a.TransID)
	want, _ := json.Marshal(blocking.TransID)
	if !bytes.Equal(tid, want) {
		t.Fatalf("transid %s, want %s", tid, want)
	}
	a2, raw2 := e.ctl.ack(nonblocking.ActivationID)
	checkForwarded(t, a2)
	if a2.Kind != AckCombined || a2.ResponseID != nonblocking.ActivationID || a2.Activation != nil {
		t.Fatalf("non-blocking answer %s", raw2)
	}
	// The forced ack would come after 2 × 60s + 1 min.
	if el := time.Since(start); el > 60*time.Second {
		t.Fatalf("answered after %s", el)
	}
	if c := e.bridge.Counts(); c.Synthetic != 2 || c.Assigned != 0 {
		t.Fatalf("counts %+v", c)
	}
}

// TestOverloadAnswered: a full pending queue (cap 1) behind one slow
// invoker of one slot answers the activations it refuses with 429.
func TestOverloadAnswered(t *testing.T) {
	e := newEnv(t, envOpts{pendingCap: 1, cfg: func(c *Config) { c.SlotMB = 1024 }})
	inv := e.startInvoker(0, true)
	inv.run.Store(int64(3 * time.Second))
	e.waitRotation(1)
	var ms []*ActivationMessage
	for i := range 4 {
		m := e.ctl.activation("guest", "slow", true, i)
		e.ctl.send(m)
		ms = append(ms, m)
	}
	overloaded := 0
	for _, m := range ms {
		a, raw := e.ctl.ack(m.ActivationID)
		checkForwarded(t, a)
		if a.Activation != nil && a.Activation.Response.StatusCode == StatusWhiskError {
			if !strings.Contains(string(raw), "overloaded") {
				t.Fatalf("refusal %s", raw)
			}
			overloaded++
		}
	}
	if overloaded != 2 { // one runs, one waits, two are refused
		t.Fatalf("%d refused, want 2", overloaded)
	}
}

// TestInvokerCrash: once an invoker stops pinging, every new activation
// goes to the one left.
func TestInvokerCrash(t *testing.T) {
	e := newEnv(t, envOpts{policy: "leastconn"})
	inv0 := e.startInvoker(0, false)
	inv1 := e.startInvoker(1, true)
	e.waitRotation(2)
	eventually(t, "both invokers used", func() bool {
		m := e.ctl.activation("guest", "spread", false, 0)
		e.ctl.send(m)
		e.ctl.ack(m.ActivationID)
		_, _, t0 := inv0.stats()
		_, _, t1 := inv1.stats()
		return t0 > 0 && t1 > 0
	})
	inv0.stop()
	_, _, before := inv0.stats()
	// Activations sent until the scheduler drops invoker0 may go to it and
	// be answered by the controller's forced ack; after that all succeed.
	time.Sleep(e.bridge.cfg.InvokerTimeout + 4*time.Second)
	for i := range 10 {
		m := e.ctl.activation("guest", "spread", true, i)
		e.ctl.send(m)
		a, raw := e.ctl.ack(m.ActivationID)
		if a.Activation == nil || a.Activation.Response.StatusCode != StatusSuccess {
			t.Fatalf("after the crash: %s", raw)
		}
	}
	if _, _, after := inv0.stats(); after != before {
		t.Fatalf("the crashed invoker got %d activations", after-before)
	}
}

// TestHealthProbe: a controller's health-test activation skips the
// scheduler and goes to a healthy invoker; its ack comes back as the
// facade's.
func TestHealthProbe(t *testing.T) {
	e := newEnv(t, envOpts{})
	inv := e.startInvoker(3, true)
	m := e.ctl.activation("whisk.system", "invokerHealthTestAction0", false, nil)
	eventually(t, "invoker known", func() bool {
		e.bridge.mu.Lock()
		defer e.bridge.mu.Unlock()
		return e.bridge.invokers[3] != nil
	})
	sent := e.ctl.send(m)
	a, _ := e.ctl.ack(m.ActivationID)
	checkForwarded(t, a)
	if got, _ := inv.ran(m.ActivationID); !bytes.Equal(got, sent) {
		t.Fatal("health test did not reach the invoker unchanged")
	}
	if c := e.bridge.Counts(); c.HealthTests != 1 || c.Arrivals != 0 || c.Completions != 0 {
		t.Fatalf("counts %+v", c)
	}
}

// TestSystemErrorsStayWithTheInvoker: an invoker answering with system
// errors does not make the facade look unhealthy (the controller sees
// isSystemError false), but its heartbeats turn unhealthy and the
// scheduler stops sending it work.
func TestSystemErrorsStayWithTheInvoker(t *testing.T) {
	e := newEnv(t, envOpts{policy: "leastconn", cfg: func(c *Config) { c.ErrorMemory = 4 * time.Second }})
	bad := e.startInvoker(0, true)
	bad.sysErr.Store(true)
	good := e.startInvoker(1, true)
	e.waitRotation(2)
	eventually(t, "bad invoker marked unhealthy", func() bool {
		m := e.ctl.activation("guest", "f", false, 0)
		e.ctl.send(m)
		a, _ := e.ctl.ack(m.ActivationID)
		checkForwarded(t, a)
		e.bridge.mu.Lock()
		defer e.bridge.mu.Unlock()
		inv := e.bridge.invokers[0]
		return inv != nil && inv.systemErrors(time.Now(), e.bridge.cfg.ErrorMemory) > e.bridge.cfg.UnhealthyErrors
	})
	time.Sleep(time.Second) // the unhealthy heartbeat reaches the scheduler
	_, _, before := bad.stats()
	for i := range 5 {
		m := e.ctl.activation("guest", "f", true, i)
		e.ctl.send(m)
		a, raw := e.ctl.ack(m.ActivationID)
		if a.Activation == nil || a.Activation.Response.StatusCode != StatusSuccess {
			t.Fatalf("%s", raw)
		}
	}
	if _, _, after := bad.stats(); after != before {
		t.Fatalf("unhealthy invoker got %d more", after-before)
	}
	if _, _, n := good.stats(); n < 5 {
		t.Fatalf("good invoker ran %d", n)
	}
	// Its errors age out and it is tried again.
	bad.sysErr.Store(false)
	eventually(t, "the recovered invoker used again", func() bool {
		m := e.ctl.activation("guest", "f", false, 0)
		e.ctl.send(m)
		e.ctl.ack(m.ActivationID)
		_, _, now := bad.stats()
		return now > before
	})
}

// TestDisabledInvokerDrains: a 2.0 invoker pinging isEnabled false gets no
// new work.
func TestDisabledInvokerDrains(t *testing.T) {
	e := newEnv(t, envOpts{policy: "leastconn"})
	off := e.startInvoker(0, true)
	off.enabled.Store(false)
	on := e.startInvoker(1, false)
	e.waitRotation(1)
	time.Sleep(time.Second) // the disabled one stays out
	for i := range 6 {
		m := e.ctl.activation("guest", "g", true, i)
		e.ctl.send(m)
		a, raw := e.ctl.ack(m.ActivationID)
		if a.Activation == nil || a.Activation.Response.StatusCode != StatusSuccess {
			t.Fatalf("%s", raw)
		}
	}
	if _, _, n := off.stats(); n != 0 {
		t.Fatalf("disabled invoker ran %d", n)
	}
	if _, _, n := on.stats(); n != 6 {
		t.Fatalf("enabled invoker ran %d", n)
	}
}

// TestLargePayload: an activation of about 1 MiB reaches the invoker byte
// for byte; one too large for an assignment is answered at once.
func TestLargePayload(t *testing.T) {
	e := newEnv(t, envOpts{})
	inv := e.startInvoker(0, true)
	inv.split = true
	e.waitRotation(1)
	big := e.ctl.activation("guest", "big", true, strings.Repeat("a", 1000*1024))
	sent := e.ctl.send(big)
	a, _ := e.ctl.ack(big.ActivationID)
	checkForwarded(t, a)
	if got, _ := inv.ran(big.ActivationID); !bytes.Equal(got, sent) {
		t.Fatalf("payload of %d bytes changed on its way (got %d)", len(sent), len(got))
	}
	// A message the controller can write (it fits a record on its own)
	// but whose arrival leaves no room for the assignment's extra members.
	huge := e.ctl.activation("guest", "big", true, "")
	empty, _ := huge.Encode()
	huge.Content, _ = json.Marshal(strings.Repeat("b", 1047800-len(empty)))
	e.ctl.send(huge)
	a, raw := e.ctl.ack(huge.ActivationID)
	if a.Activation == nil || a.Activation.Response.StatusCode != StatusWhiskError || !strings.Contains(string(raw), "cannot take") {
		t.Fatalf("too-large answer %.300s", raw)
	}
	if _, runs := inv.ran(huge.ActivationID); runs != 0 {
		t.Fatal("too-large activation ran")
	}
}

// TestRedeliveredDuplicates: an activation written twice runs once, and
// an ack written twice is forwarded but completes once.
func TestRedeliveredDuplicates(t *testing.T) {
	e := newEnv(t, envOpts{})
	inv := e.startInvoker(0, true)
	inv.dupAcks.Store(true)
	e.waitRotation(1)
	m := e.ctl.activation("guest", "once", false, 1)
	e.ctl.send(m)
	e.ctl.send(m)
	e.ctl.ack(m.ActivationID)
	eventually(t, "both acks forwarded", func() bool { return e.ctl.ackCount(m.ActivationID) >= 2 })
	time.Sleep(time.Second)
	if _, runs := inv.ran(m.ActivationID); runs != 1 {
		t.Fatalf("ran %d times", runs)
	}
	if c := e.bridge.Counts(); c.Completions != 1 || c.Assigned != 1 || c.Duplicates < 1 {
		t.Fatalf("counts %+v", c)
	}
}

// TestPendingTimeoutAnswered: an activation that waits in pullsched's
// queue past its deadline is answered with a whisk error naming the
// timeout, while the one that was running is answered by its invoker.
func TestPendingTimeoutAnswered(t *testing.T) {
	// A deadline of max(60s, limit) × 2 + 0 - 119s = 1s after arrival.
	e := newEnv(t, envOpts{cfg: func(c *Config) {
		c.SlotMB, c.ForcedAckAddon, c.AnswerMargin = 1024, time.Nanosecond, 119*time.Second
	}})
	inv := e.startInvoker(0, true)
	inv.run.Store(int64(2500 * time.Millisecond))
	e.waitRotation(1)
	running := e.ctl.activation("guest", "slow", true, 1)
	waiting := e.ctl.activation("guest", "slow", true, 2)
	e.ctl.send(running)
	e.ctl.send(waiting)
	a, raw := e.ctl.ack(waiting.ActivationID)
	checkForwarded(t, a)
	if a.Activation == nil || a.Activation.Response.StatusCode != StatusWhiskError || !strings.Contains(string(raw), "timeout") {
		t.Fatalf("timed-out activation answered %s", raw)
	}
	if _, runs := inv.ran(waiting.ActivationID); runs != 0 {
		t.Fatal("the timed-out activation ran")
	}
	a, raw = e.ctl.ack(running.ActivationID)
	if a.Activation == nil || a.Activation.Response.StatusCode != StatusSuccess {
		t.Fatalf("running activation answered %s", raw)
	}
}

// TestBridgeRestart: a bridge that restarts while an activation runs
// still forwards its ack and completes it from the record the ack
// carries, and the next activations run warm where it ran.
func TestBridgeRestart(t *testing.T) {
	e := newEnv(t, envOpts{})
	inv := e.startInvoker(0, true)
	inv.run.Store(int64(2 * time.Second))
	e.waitRotation(1)
	m := e.ctl.activation("guest", "long", true, 1)
	e.ctl.send(m)
	eventually(t, "assignment handed over", func() bool { return e.bridge.Counts().Assigned == 1 })
	e.stopBridge()
	br := e.startBridge()
	select {
	case <-br.Ready():
	case <-time.After(waitFor):
		t.Fatal("restarted bridge not ready")
	}
	a, raw := e.ctl.ack(m.ActivationID)
	checkForwarded(t, a)
	if a.Activation == nil || a.Activation.Response.StatusCode != StatusSuccess {
		t.Fatalf("after the restart: %s", raw)
	}
	eventually(t, "completion from the record", func() bool { return br.Counts().Completions == 1 })
	inv.run.Store(int64(10 * time.Millisecond))
	m2 := e.ctl.activation("guest", "long", true, 2)
	e.ctl.send(m2)
	if a, raw := e.ctl.ack(m2.ActivationID); a.Activation == nil || a.Activation.InitTimeMs() >= 0 {
		t.Fatalf("the next activation ran cold: %s", raw)
	}
}
