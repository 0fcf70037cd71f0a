package benchchain

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// controllerMetrics is what the controller's /metrics says about /run:
// the time its handler took (sum and count over every answer) and the
// admission rule's refusals. Differences of two scrapes describe a run.
type controllerMetrics struct {
	handlerSum   float64 // seconds
	handlerCount float64
	refused      float64
	ok           bool
}

// scrapeController reads the controller's /metrics; ok is false when it
// could not.
func scrapeController(ctx context.Context, base string) controllerMetrics {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return controllerMetrics{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return controllerMetrics{}
	}
	defer resp.Body.Close()
	return parseControllerMetrics(bufio.NewScanner(resp.Body))
}

func parseControllerMetrics(sc *bufio.Scanner) controllerMetrics {
	m := controllerMetrics{ok: true}
	for sc.Scan() {
		line := sc.Text()
		name, val, found := strings.Cut(line, " ")
		if !found || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "pullsched_controller_request_seconds_sum"):
			m.handlerSum += v
		case strings.HasPrefix(name, "pullsched_controller_request_seconds_count"):
			m.handlerCount += v
		case name == "pullsched_controller_admission_refused_total":
			m.refused = v
		}
	}
	return m
}

// handlerMeanMs is the mean time the controller's handler took per
// answer between two scrapes, in ms (0 when unknown).
func handlerMeanMs(before, after controllerMetrics) float64 {
	n := after.handlerCount - before.handlerCount
	if !before.ok || !after.ok || n <= 0 {
		return 0
	}
	return ms(time.Duration((after.handlerSum - before.handlerSum) / n * float64(time.Second)))
}
