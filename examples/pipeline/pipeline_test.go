package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/cluster"
	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/it"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// TestDocShowsThisCode: docs/PIPELINE.md carries pipeline.go verbatim, so
// the example readers copy is the code the test below runs.
func TestDocShowsThisCode(t *testing.T) {
	code, err := os.ReadFile("pipeline.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/PIPELINE.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```go\n"+string(code)+"```\n") {
		t.Fatal("docs/PIPELINE.md does not hold examples/pipeline/pipeline.go verbatim in a ```go block; paste the file again")
	}
}

const partitions = 4

// startCluster runs pullsched (one scheduler, the ingress, simulated
// workers ten times faster than real time) on the integration tests'
// broker: Apache Kafka when PULLSCHED_IT_BROKERS names one, a container
// where Docker runs, the embedded broker otherwise.
func startCluster(t *testing.T) (*cluster.Cluster, it.Env) {
	t.Helper()
	env := it.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := cluster.Start(ctx, cluster.Config{
		Brokers:          env.Seeds,
		Topics:           topics.Config{Prefix: env.Prefix, Partitions: partitions, Replication: 1},
		Workers:          3,
		Sim:              workersim.Config{TimeScale: 0.1},
		ControllerListen: "127.0.0.1:0",
		Logger:           zerolog.Nop(),
	})
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("cluster stop: %v", err)
		}
	})
	return cl, env
}

// TestPipelineRunsFunctions: arrivals produced with sarama are scheduled,
// run and answered on the pipeline's own results topic, and each arrival
// sits on the partition Kafka's murmur2 gives its function, the one its
// worker-events use.
func TestPipelineRunsFunctions(t *testing.T) {
	_, env := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := New(ctx, Config{Brokers: env.Seeds, Prefix: env.Prefix, ID: "pipeline-1", Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	fns := []string{"linpack-1", "matmul-1", "pyaes-1", "float_operation-1", "chameleon-1", "dd-1", "gzip_compression-1", "json_dumps_loads-1"}
	want := map[string]string{} // id -> function
	var ids []string
	for i := 0; i < 3*len(fns); i++ {
		fn := fns[i%len(fns)]
		id, err := p.Submit(ctx, fn, json.RawMessage(fmt.Sprintf(`{"n": %d}`, 100+i)))
		if err != nil {
			t.Fatalf("submit %s: %v", fn, err)
		}
		want[id] = fn
		ids = append(ids, id)
	}
	workers := map[string]bool{}
	for _, id := range ids {
		r, err := p.Await(ctx, id)
		if err != nil {
			t.Fatalf("await %s (%s): %v", id, want[id], err)
		}
		if r.ID != id || r.Function != want[id] || r.Status != 200 || r.Worker == "" || !json.Valid(r.Body) || len(r.Body) == 0 {
			t.Fatalf("result of %s (%s): %+v", id, want[id], r)
		}
		if r.Start != "cold" && r.Start != "warm" {
			t.Errorf("result of %s: start %q", id, r.Start)
		}
		workers[r.Worker] = true
	}
	t.Logf("%d results from %d workers", len(ids), len(workers))

	// Each arrival is on its function's murmur2 partition.
	seen := 0
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	err = consumer.ReadRange(rctx, consumer.ReaderConfig{Kafka: kafkaconn.Config{Brokers: env.Seeds}, Topic: topics.NewNames(env.Prefix).Arrivals()}, nil, time.Time{}, func(r *kgo.Record) error {
		a, err := topics.DecodeArrival(r.Value)
		if err != nil {
			return fmt.Errorf("arrival at %d/%d: %w", r.Partition, r.Offset, err)
		}
		if _, ours := want[a.ID]; !ours {
			return nil
		}
		seen++
		if string(r.Key) != a.Function || a.Reply != "pipeline-1" {
			t.Errorf("arrival %s: key %q reply %q", a.ID, r.Key, a.Reply)
		}
		if wantPart := topics.PartitionFor(r.Key, partitions); r.Partition != wantPart {
			t.Errorf("arrival of %s on partition %d, murmur2 says %d", a.Function, r.Partition, wantPart)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(ids) {
		t.Fatalf("found %d of our %d arrivals", seen, len(ids))
	}
}

// TestPipelineMisuse: what the pipeline refuses, and that Await honours
// its context.
func TestPipelineMisuse(t *testing.T) {
	env := it.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := topics.EnsureAll(ctx, env.Admin(t), topics.Config{Prefix: env.Prefix, Partitions: partitions, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, Config{Brokers: env.Seeds, ID: "bad id"}); err == nil {
		t.Fatal("New accepted an id with a space")
	}
	if _, err := New(ctx, Config{ID: "p"}); err == nil {
		t.Fatal("New accepted no brokers")
	}
	p, err := New(ctx, Config{Brokers: env.Seeds, Prefix: env.Prefix, ID: "pipeline-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Submit(ctx, "no/slashes", nil); err == nil {
		t.Fatal("Submit accepted an invalid function name")
	}
	if _, err := p.Await(ctx, "3f1b0c2e-0000-4000-8000-000000000000"); err == nil {
		t.Fatal("Await of an id never submitted did not fail")
	}
	// No scheduler runs here, so nothing answers: Await ends with ctx.
	id, err := p.Submit(ctx, "linpack-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithCancel(ctx)
	stop()
	if _, err := p.Await(short, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("Await with a cancelled context: %v", err)
	}
	if _, err := p.Await(ctx, id); err == nil {
		t.Fatal("an abandoned id can still be awaited")
	}
}
