package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
)

func TestTimingFor(t *testing.T) {
	for _, tc := range []struct {
		name            string
		want, brokerMin time.Duration
		session, beat   time.Duration
		raised          bool
	}{
		{"default on a broker that allows it", 2 * time.Second, time.Second, 2 * time.Second, 500 * time.Millisecond, false},
		{"broker minimum unknown", 2 * time.Second, 0, 2 * time.Second, 500 * time.Millisecond, false},
		{"raised to Kafka's default minimum", 2 * time.Second, 6 * time.Second, 6 * time.Second, 1500 * time.Millisecond, true},
		{"equal to the minimum", 6 * time.Second, 6 * time.Second, 6 * time.Second, 1500 * time.Millisecond, false},
		{"heartbeat floor", 200 * time.Millisecond, 0, 200 * time.Millisecond, 100 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := timingFor(tc.want, tc.brokerMin)
			if got.Session != tc.session || got.Heartbeat != tc.beat || got.Raised != tc.raised {
				t.Fatalf("timingFor(%v, %v) = %+v, want session %v heartbeat %v raised %v",
					tc.want, tc.brokerMin, got, tc.session, tc.beat, tc.raised)
			}
		})
	}
}

// The embedded broker allows the default 2s session; a broker with
// Kafka's stock 6s minimum reports it, so the scheduler raises its session
// instead of failing to join.
func TestBrokerMinSession(t *testing.T) {
	embedded, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(embedded.Close)
	stock, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stock.Close)

	for _, tc := range []struct {
		name  string
		addrs []string
		want  time.Duration
	}{
		{"embedded broker", embedded.Addrs(), time.Second},
		{"stock minimum", stock.ListenAddrs(), 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(tc.addrs...))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := brokerMinSession(ctx, kadm.NewClient(cl))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("%s = %v, want %v", minSessionKey, got, tc.want)
			}
		})
	}
}
