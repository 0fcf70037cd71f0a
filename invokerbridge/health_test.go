package invokerbridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A heartbeat says healthy for a ready worker, and for one whose probe only
// timed out while it answered calls within the interval; never for one that
// answers "not ready" or refuses.
func TestJudgeHealth(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const interval = time.Second
	for _, tc := range []struct {
		name   string
		p      probe
		lastOK time.Duration // before now; negative: never
		want   bool
	}{
		{"ready", probeReady, -1, true},
		{"timed out, a call answered just now", probeTimeout, 10 * time.Millisecond, true},
		{"timed out, last call answered an interval ago", probeTimeout, interval, false},
		{"timed out, no call ever answered", probeTimeout, -1, false},
		{"not ready, a call answered just now", probeNo, 10 * time.Millisecond, false},
		{"refused", probeNo, -1, false},
	} {
		var last time.Time
		if tc.lastOK >= 0 {
			last = now.Add(-tc.lastOK)
		}
		if got := judgeHealth(tc.p, last, now, interval); got != tc.want {
			t.Errorf("%s: healthy %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The probe tells a slow answer from a definite one.
func TestHealthProbe(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow/status":
			<-release
		case "/busy/status":
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case "/warming/status":
			_, _ = w.Write([]byte("warming\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	defer srv.Close()
	defer close(release)
	b := &Bridge{cfg: Config{HealthTimeout: 50 * time.Millisecond}, client: srv.Client()}
	for base, want := range map[string]probe{"/ok": probeReady, "/busy": probeNo, "/warming": probeNo, "/slow": probeTimeout} {
		if got := b.healthy(context.Background(), srv.URL+base); got != want {
			t.Errorf("%s: probe %d, want %d", base, got, want)
		}
	}
	if got := b.healthy(context.Background(), "http://127.0.0.1:1"); got != probeNo {
		t.Errorf("refused: probe %d, want %d (no)", got, probeNo)
	}
}
