package scheduler

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// readyz returns the status and reason /readyz answers.
func readyz(t *testing.T, s *Scheduler) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body["reason"]
}

// An arrival that cannot be placed makes /readyz fail, naming its
// partition, once nothing on that partition has finished for StuckAfter
// (1ns here: at once); placing it makes the replica ready again. Dead
// letters are counted in /metrics.
func TestReadyzReportsNoProgress(t *testing.T) {
	e := newEnv(t, 1)
	br := e.bridge("w1", 1, false)
	cfg := e.config("s1")
	cfg.Listen = "127.0.0.1:0"
	cfg.StuckAfter = time.Nanosecond
	s, _ := e.start(cfg)
	waitRotation(t, s, "w1")

	first := e.arrive("f", "c1", time.Time{})
	_, a1 := waitAssigned(t, first, br)
	second := e.arrive("f", "c1", time.Time{}) // waits for w1's one slot
	want := e.names.Arrivals() + "[0]"
	eventually(t, "readyz naming the waiting arrival's partition", func() bool {
		code, reason := readyz(t, s)
		return code == http.StatusServiceUnavailable && strings.Contains(reason, want)
	})
	if metricText(t, s, "pullsched_scheduler_stuck_partitions 0") {
		t.Error("stuck_partitions = 0 while /readyz names a stuck partition")
	}

	br.complete(e.ctx, a1, true)
	_, a2 := waitAssigned(t, second, br)
	br.complete(e.ctx, a2, true)
	eventually(t, "ready once everything read is finished", func() bool {
		code, _ := readyz(t, s)
		return code == http.StatusOK
	})

	if err := e.prod.Client().ProduceSync(e.ctx, &kgo.Record{Topic: e.names.Arrivals(), Value: []byte("junk")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the junk record counted as a dead letter", func() bool {
		return metricText(t, s, "pullsched_scheduler_dead_letters_total 1")
	})
	if !metricText(t, s, "pullsched_scheduler_dead_letter_failures_total 0") {
		t.Error("dead-letter failures not exposed as 0")
	}
}

// metricText reports whether /metrics has a line that is line.
func metricText(t *testing.T, s *Scheduler, line string) bool {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, l := range strings.Split(readAll(t, resp), "\n") {
		if l == line {
			return true
		}
	}
	return false
}
