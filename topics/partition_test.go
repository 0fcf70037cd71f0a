package topics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionForMatchesKgo: franz-go's default partitioner (the Java
// client's murmur2) puts every key where PartitionFor says.
func TestPartitionForMatchesKgo(t *testing.T) {
	adm, seeds := fakeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const parts = 7
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, "p"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 200; i++ {
		key := []byte(fmt.Sprintf("fn-%d-%s", i, "x"[:i%2]))
		r := &kgo.Record{Topic: "p", Key: key, Value: []byte("v")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if want := PartitionFor(key, parts); r.Partition != want {
			t.Fatalf("key %q: kgo chose %d, PartitionFor %d", key, r.Partition, want)
		}
	}
}
