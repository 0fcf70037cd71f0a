package owsim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pullsched/pullsched/workersim"
)

// TestClusterServesCalls runs calls through the simulated controller, the
// bridge, pullsched and the simulated invokers: the first call of a
// function starts cold, the next ones on the same invoker warm.
func TestClusterServesCalls(t *testing.T) {
	for _, pol := range []string{"pull", "ow-hash"} {
		t.Run(pol, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := Start(ctx, ClusterConfig{Policy: pol, Invokers: 2, Sim: workersim.Config{TimeScale: 0.05, MemoryMB: 2048}})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.Stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
			}()
			var workers []string
			for i := range 5 {
				resp, err := http.Post(c.URL()+"/run/linpack-1", "application/json", strings.NewReader(`{"n":10}`))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
				}
				want := "0"
				if i == 0 {
					want = "1"
				}
				if got := resp.Header.Get("X-Cold-Start"); got != want {
					t.Fatalf("call %d: X-Cold-Start %q, want %q", i, got, want)
				}
				workers = append(workers, resp.Header.Get("X-Worker"))
			}
			for _, w := range workers {
				if w != workers[0] || !strings.HasPrefix(w, "invoker") {
					t.Fatalf("workers %v: want one invoker throughout", workers)
				}
			}
		})
	}
}
