package consumer

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// TestDeadLetterNeverBlocks: an undecodable record that cannot be
// dead-lettered whole — its copy is over the producer's limit, or the dlq
// topic refuses it — is dead-lettered as a reference; one that cannot be
// dead-lettered at all is counted as a failure. Either way the records
// after it are handled and the consumer moves on.
func TestDeadLetterNeverBlocks(t *testing.T) {
	// fill is a value that makes a record with key "f" exactly as large as
	// the producer (and the topic's default max.message.bytes) allow.
	fill := func() []byte {
		r := &kgo.Record{Key: []byte("f")}
		return []byte(`"` + string(make([]byte, topics.MaxMessageBytes-producer.BatchBytes(r)-2)) + `"`)
	}
	for _, tc := range []struct {
		name     string
		value    []byte
		dlqCfg   map[string]*string // nil: the dlq topic is not created
		wantRef  bool
		wantFail bool
	}{
		{name: "copy over the producer's limit", value: fill(), dlqCfg: map[string]*string{}, wantRef: true},
		{name: "copy over the dlq topic's limit", value: make([]byte, 20_000),
			dlqCfg: map[string]*string{"max.message.bytes": kadm.StringPtr("10000")}, wantRef: true},
		{name: "small copy", value: []byte("not json"), dlqCfg: map[string]*string{}},
		{name: "no dlq topic", value: []byte("not json"), wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := broker.Start(broker.Config{Ports: []int{0}, DisableAutoCreate: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			p, err := producer.New(producer.Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}, DeliveryTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close(time.Second) })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			adm := kadm.NewClient(p.Client())
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			if tc.dlqCfg != nil {
				if _, err := adm.CreateTopic(ctx, 1, 1, tc.dlqCfg, dlq); err != nil {
					t.Fatal(err)
				}
			}
			bad := &kgo.Record{Topic: topic, Key: []byte("f"), Value: tc.value,
				Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}}
			if err := p.Client().ProduceSync(ctx, bad).FirstErr(); err != nil {
				t.Fatalf("the broker refused the bad record itself: %v", err)
			}
			e := env{brokers: b.Addrs(), prod: p}
			ids := e.arrivals(t, 2)

			rec := newRecorder(func(*Delivery) bool { return true })
			var c *Consumer
			stop := run(t, e, rec, nil, func(got *Consumer) { c = got })
			got := rec.wait(t, 2)
			stop()
			for i, d := range got {
				if id := d.Event.(*topics.Arrival).ID; id != ids[i] {
					t.Fatalf("delivery %d is %s, want %s", i, id, ids[i])
				}
			}
			if tc.wantFail {
				if c.Counts().Failures != 1 || c.Counts().Letters != 0 {
					t.Fatalf("failures %d, dead-lettered %d; want 1, 0", c.Counts().Failures, c.Counts().Letters)
				}
				return
			}
			if c.Counts().Letters != 1 || c.Counts().Failures != 0 {
				t.Fatalf("dead-lettered %d, failures %d; want 1, 0", c.Counts().Letters, c.Counts().Failures)
			}
			if refs := c.Counts().References; refs != map[bool]int64{true: 1}[tc.wantRef] {
				t.Fatalf("references %d, want reference=%v", refs, tc.wantRef)
			}
			var dead []*kgo.Record
			err = ReadRange(ctx, ReaderConfig{Kafka: kafkaconn.Config{Brokers: e.brokers}, Topic: dlq}, nil, time.Time{}, func(r *kgo.Record) error {
				dead = append(dead, r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 1 {
				t.Fatalf("dlq has %d records, want 1", len(dead))
			}
			h := map[string]string{}
			for _, kv := range dead[0].Headers {
				h[kv.Key] = string(kv.Value)
			}
			if h[HeaderError] == "" || h[HeaderTopic] != topic || h[HeaderPartition] != "0" || h[HeaderOffset] != "0" {
				t.Fatalf("dead letter headers %v", h)
			}
			if !tc.wantRef {
				if string(dead[0].Value) != string(tc.value) || h["trace"] != "t1" || h[HeaderReference] != "" {
					t.Fatalf("copy: headers %v, value %q", h, dead[0].Value)
				}
				return
			}
			if h[HeaderReference] == "" || h[HeaderSize] != strconv.Itoa(1+len(tc.value)+len("trace")+len("t1")) ||
				h[HeaderPrefix] != strconv.Itoa(PrefixBytes) || string(dead[0].Value) != string(tc.value[:PrefixBytes]) {
				t.Fatalf("reference: headers %v, value of %d bytes", h, len(dead[0].Value))
			}
		})
	}
}

// TestDeadLetterAsync: the non-waiting form takes the same decisions as
// DeadLetter — a copy when it fits, a reference when the producer's limit or
// the dlq topic's refuses the copy.
func TestDeadLetterAsync(t *testing.T) {
	p := newEnv(t).prod
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(p.Client())
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "dlq.big"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("10000")}, "dlq.small"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		dlq   string
		value []byte
		want  DeadLetterResult
	}{
		{"copy", "dlq.big", []byte("junk"), DeadLetterCopy},
		{"over the producer's limit", "dlq.big", make([]byte, topics.MaxMessageBytes), DeadLetterReference},
		{"over the topic's limit", "dlq.small", make([]byte, 20_000), DeadLetterReference},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &kgo.Record{Topic: topic, Partition: 3, Offset: 7, Value: tc.value}
			got := make(chan DeadLetterResult, 1)
			DeadLetterAsync(ctx, p, tc.dlq, r, errors.New("bad"), func(kind DeadLetterResult, err error) {
				if err != nil {
					t.Errorf("DeadLetterAsync: %v", err)
				}
				got <- kind
			})
			select {
			case kind := <-got:
				if kind != tc.want {
					t.Fatalf("result %d, want %d", kind, tc.want)
				}
			case <-ctx.Done():
				t.Fatal("done never called")
			}
		})
	}
}
