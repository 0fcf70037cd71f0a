package it

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pullsched/pullsched/owbridge/owsim"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// TestOpenWhiskMode: a simulated stock OpenWhisk (a controller writing to
// its virtual invoker0, two invokers reading invoker<N>) placed by
// pullsched's OpenWhisk bridge and a scheduler, all on the test's broker:
// every call is answered from its invoker's ack, the first cold and the
// following ones warm on the same invoker.
func TestOpenWhiskMode(t *testing.T) {
	env := Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c, err := owsim.Start(ctx, owsim.ClusterConfig{
		Brokers:         env.Seeds,
		Topics:          topics.Config{Prefix: env.Prefix, Partitions: 4, Replication: 1},
		OpenWhiskPrefix: env.Prefix,
		Invokers:        2,
		Sim:             workersim.Config{TimeScale: 0.05, MemoryMB: 2048},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	var first string
	for i := range 4 {
		resp, err := http.Post(c.URL()+"/run/linpack-1", "application/json", strings.NewReader(`{"n":10}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
		cold, worker := resp.Header.Get("X-Cold-Start"), resp.Header.Get("X-Worker")
		if i == 0 {
			first = worker
		}
		if (i == 0) != (cold == "1") || worker != first || !strings.HasPrefix(worker, "invoker") {
			t.Fatalf("call %d: cold %q on %q; want the first cold and all on one invoker (%q)", i, cold, worker, first)
		}
	}
}
