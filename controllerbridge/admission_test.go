package controllerbridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pullsched/pullsched/kafkaconn"
)

// TestAdmissionRule walks the rule through sequences of answers and
// arrivals, at times relative to t0, and checks the limit and decisions.
func TestAdmissionRule(t *testing.T) {
	const ms = time.Millisecond
	type step struct {
		at      time.Duration // since t0
		observe time.Duration // > 0: an answer with this added time; else an arrival
		waiting int
		admit   bool // for arrivals: the expected decision
		limit   int  // the limit expected after the step (-1: do not check)
	}
	arrive := func(at time.Duration, waiting int, admit bool, limit int) step {
		return step{at: at, waiting: waiting, admit: admit, limit: limit}
	}
	answer := func(at, added time.Duration, waiting int) step {
		return step{at: at, observe: added, waiting: waiting, limit: -1}
	}
	// answers spreads n answers with the same added time over [from, to).
	answers := func(from, to time.Duration, n int, added time.Duration, waiting int) []step {
		var out []step
		for i := range n {
			out = append(out, answer(from+(to-from)*time.Duration(i)/time.Duration(n), added, waiting))
		}
		return out
	}
	seq := func(parts ...any) []step {
		var out []step
		for _, p := range parts {
			switch p := p.(type) {
			case step:
				out = append(out, p)
			case []step:
				out = append(out, p...)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"fast answers never limit", seq(
			arrive(0, 0, true, 0), answer(10*ms, 5*ms, 100), answer(90*ms, 240*ms, 300),
			arrive(150*ms, 5000, true, 0), answer(160*ms, 3*ms, 10), arrive(300*ms, 9000, true, 0),
		)},
		{"one slow answer among fast ones is a burst, not a queue", seq(
			arrive(0, 0, true, 0), answer(10*ms, 2*time.Second, 400), answer(20*ms, 4*ms, 400),
			arrive(120*ms, 400, true, 0),
		)},
		{"a standing queue sets the limit to the answers per target", seq(
			arrive(0, 0, true, 0), arrive(10*ms, 400, true, 0),
			// 80 answers in 100ms, each 1s late: 800/s × 250ms = 200.
			answers(10*ms, 100*ms, 80, time.Second, 400),
			arrive(100*ms, 400, false, 200), arrive(110*ms, 199, true, 200), arrive(120*ms, 200, false, 200),
		)},
		{"the rate is taken over the interval's real length", seq(
			arrive(0, 90, true, 0), answers(0, 100*ms, 80, time.Second, 90),
			// Closed at 400ms: 80 answers in 400ms, 200/s × 250ms = 50.
			arrive(400*ms, 50, false, 50), arrive(401*ms, 49, true, 50),
		)},
		{"a cut at most halves the peak waiting", seq(
			arrive(0, 800, true, 0), answers(0, 100*ms, 8, time.Second, 800),
			// 80/s × 250ms = 20, but half the peak of 800 is 400.
			arrive(100*ms, 400, false, 400),
		)},
		{"the limit never goes below the minimum", seq(
			arrive(0, 20, true, 0), answer(20*ms, 10*time.Second, 20),
			arrive(100*ms, 16, false, admissionMinLimit), arrive(101*ms, 15, true, admissionMinLimit),
		)},
		{"while the queue stands each interval cuts, at most halving, down to the rate", seq(
			arrive(0, 1600, true, 0), answers(0, 100*ms, 80, time.Second, 1600),
			// 200 by the rate, but at most halving the peak of 1600: 800.
			arrive(100*ms, 800, false, 800),
			answers(100*ms, 200*ms, 80, 900*ms, 800),
			arrive(200*ms, 800, false, 400),
			answers(200*ms, 300*ms, 80, 800*ms, 400),
			arrive(300*ms, 400, false, 200),
			// The rate-based value is reached: it holds there.
			answers(300*ms, 400*ms, 80, 700*ms, 200),
			arrive(400*ms, 200, false, 200), arrive(401*ms, 199, true, 200),
		)},
		{"the peak rate is remembered, so the limit does not spiral down with what it lets through", seq(
			arrive(0, 400, true, 0), answers(0, 100*ms, 80, time.Second, 400),
			arrive(100*ms, 400, false, 200),
			// Only 20 answers (200/s) in the next interval: the peak 800/s decays
			// to 760/s, and 760/s × 250ms = 190, not 200/s × 250ms = 50.
			answers(100*ms, 200*ms, 20, time.Second, 200),
			arrive(200*ms, 190, false, 190), arrive(201*ms, 189, true, 190),
		)},
		{"fast answers raise the limit by a tenth, then lift it", seq(
			arrive(0, 400, true, 0), answers(0, 100*ms, 80, time.Second, 400),
			arrive(100*ms, 200, false, 200), answer(150*ms, 10*ms, 200),
			arrive(200*ms, 200, true, 220), answer(250*ms, 10*ms, 100),
			// Peak 200 in the interval from 200ms: 242 < 2×200+16, kept.
			arrive(300*ms, 100, true, 242), answer(350*ms, 10*ms, 50),
			// Peak 100: 266 ≥ 2×100+16: lifted.
			arrive(400*ms, 50, true, 0),
		)},
		{"an interval without answers keeps the limit", seq(
			arrive(0, 400, true, 0), answers(0, 100*ms, 80, time.Second, 400),
			arrive(100*ms, 200, false, 200), arrive(250*ms, 150, true, 200), arrive(400*ms, 150, true, 200),
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmission(250*time.Millisecond, DefaultAdmissionInterval) // the numbers below assume 250ms
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.observe > 0 {
					a.observe(now, s.observe, s.waiting)
				} else if got := a.admit(now, s.waiting); got != s.admit {
					t.Fatalf("step %d (%s, %d waiting): admit = %v, want %v", i, s.at, s.waiting, got, s.admit)
				}
				if l, _, _ := a.state(); s.limit >= 0 && l != s.limit {
					t.Fatalf("step %d (%s): limit %d, want %d", i, s.at, l, s.limit)
				}
			}
		})
	}
}

func TestAdmissionOff(t *testing.T) {
	a := newAdmission(-1, DefaultAdmissionInterval)
	t0 := time.Now()
	for i := range 10 {
		a.observe(t0.Add(time.Duration(i)*time.Second), time.Hour, 1000)
		if !a.admit(t0.Add(time.Duration(i)*time.Second+time.Millisecond), 1_000_000) {
			t.Fatal("a disabled rule refused a request")
		}
	}
}

// TestAdmissionAnswers429 drives a controller's handler with a rule already
// cut: a request beyond the limit is answered 429 with Retry-After at once,
// and nothing is published.
func TestAdmissionAnswers429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}, Listen: "127.0.0.1:0", ID: "adm"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.srv.Close()
		// Cut the limit to the minimum: an interval of answers that waited 10s.
		now := time.Now()
		c.adm.observe(now, 10*time.Second, 0)
		time.Sleep(DefaultAdmissionInterval)
		// Fill the book with the minimum number of waiting requests.
		for i := range admissionMinLimit {
			if _, ok := c.book.register(strings.Repeat("x", 10)+string(rune('a'+i)), true, time.Now(), time.Now().Add(time.Minute)); !ok {
				t.Fatal("register refused")
			}
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/run/f", strings.NewReader("{}"))
		c.srv.Mux().ServeHTTP(rec, req)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" ||
			!strings.Contains(rec.Body.String(), `"reason":"overloaded"`) {
			t.Fatalf("answer %d %v %s; want 429 with Retry-After 1 and reason overloaded", rec.Code, rec.Header(), rec.Body)
		}
		// Refused before an activation was made: no X-Activation-Id at
		// all, not an empty one.
		if v, ok := rec.Header()[HeaderActivationID]; ok {
			t.Errorf("%s %q on a request refused before it had an activation; want the header absent", HeaderActivationID, v)
		}
		if l, refused, cuts := c.adm.state(); l != admissionMinLimit || refused != 1 || cuts != 1 {
			t.Errorf("limit %d refused %d cuts %d; want %d, 1, 1", l, refused, cuts, admissionMinLimit)
		}
	})
}

// The scheduler's overloaded answers (it read the arrival later than its
// shed lag) cut the limit at once, to the rate of the answers it served:
// the sheds themselves are not counted as served.
func TestAdmissionFoldsSchedulerSheds(t *testing.T) {
	const ms = time.Millisecond
	a := newAdmission(250*ms, DefaultAdmissionInterval)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	a.admit(at(0), 400)
	for i := range 100 { // 1,000/s served, fast
		a.observe(at(time.Duration(i)*ms), 10*ms, 400)
	}
	if !a.admit(at(100*ms), 400) {
		t.Fatal("refused while every answer was fast")
	}
	for i := range 500 { // the scheduler sheds; few are served
		a.shedAnswer(at(100*ms+time.Duration(i)*ms/5), 400)
	}
	for i := range 10 {
		a.observe(at(100*ms+time.Duration(i)*10*ms), 10*ms, 400)
	}
	// Peak 1,000/s decayed to 950/s × 250ms = 237 (not 5,100/s × 250ms).
	if a.admit(at(200*ms), 400) {
		l, _, _ := a.state()
		t.Fatalf("admitted 400 waiting with limit %d after an interval of scheduler sheds; want a cut to 237", l)
	}
	if l, _, cuts := a.state(); l != 237 || cuts != 1 {
		t.Fatalf("limit %d, cuts %d; want 237, 1", l, cuts)
	}
	if !a.admit(at(201*ms), 236) {
		t.Fatal("refused under the limit")
	}
}
