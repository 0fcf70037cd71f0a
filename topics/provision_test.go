package topics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func fakeAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	adm, _ := fakeCluster(t)
	return adm
}

func fakeCluster(t *testing.T) (*kadm.Client, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl), c.ListenAddrs()
}

func TestEnsureIdempotent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := fakeAdmin(t)
	cfg := Config{Prefix: "t.", Partitions: 3, Replication: 1}
	created, err := EnsureAll(ctx, adm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 4 {
		t.Fatalf("created %v, want the 4 fixed topics", created)
	}
	again, err := EnsureAll(ctx, adm, cfg)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run created %v, err %v", again, err)
	}
	if _, err := Ensure(ctx, adm, cfg.InvokerSpec("w1"), cfg.ResultsSpec("c1")); err != nil {
		t.Fatal(err)
	}
	infos, err := Describe(ctx, adm, "t.")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Info{}
	for _, in := range infos {
		byName[in.Name] = in
	}
	if len(byName) != 6 {
		t.Fatalf("described %v", infos)
	}
	if in := byName["t.arrivals"]; in.Partitions != 3 {
		t.Fatalf("arrivals: %+v", in)
	}
	if in := byName["t.workers"]; in.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("workers not compacted: %+v", in)
	}
	if in := byName["t.invoker.w1"]; in.Partitions != 1 {
		t.Fatalf("invoker topic: %+v", in)
	}
}

// TestSpecsSetMaxMessageBytes: every topic pullsched creates carries the
// max.message.bytes the producer's batch limit defaults to, so the two
// agree whatever the broker's default.
func TestSpecsSetMaxMessageBytes(t *testing.T) {
	cfg := Config{Prefix: "t."}
	specs := append(cfg.Specs(), cfg.InvokerSpec("w1"), cfg.ResultsSpec("c1"))
	for _, s := range specs {
		if got := s.Configs["max.message.bytes"]; got != "1048588" {
			t.Errorf("%s: max.message.bytes %q, want 1048588", s.Name, got)
		}
	}
}

func TestCoPartitioning(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := fakeAdmin(t)
	n := NewNames("x.")
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, n.Arrivals()); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, n.WorkerEvents()); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureAll(ctx, adm, Config{Prefix: "x.", Partitions: 2}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mismatched partitions accepted: %v", err)
	}
}
