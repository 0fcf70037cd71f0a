package producer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
)

const id = "0b9e2f4e-7a1c-4d2b-9f5e-3c8a1d6b2e70"

func TestPublishRoundTrip(t *testing.T) {
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := New(Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(p.Client()).CreateTopic(ctx, 1, 1, nil, "x.arrivals"); err != nil {
		t.Fatal(err)
	}
	a := &topics.Arrival{ID: id, Function: "matmul-1", Payload: []byte(`{"n": 100}`)}
	if err := p.Publish(ctx, "x.arrivals", a); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	p.PublishAsync(ctx, "x.arrivals", &topics.Arrival{ID: "bad"}, func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("invalid event published")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.ConsumeTopics("x.arrivals"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctx)
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Key) != "matmul-1" {
		t.Fatalf("records %v", recs)
	}
	got, err := topics.DecodeArrival(recs[0].Value)
	if err != nil || string(got.Payload) != `{"n": 100}` {
		t.Fatalf("decoded %+v %v", got, err)
	}
}

// TestDeliveryErrorReturned: a record that cannot be delivered is reported
// to the caller, not dropped.
func TestDeliveryErrorReturned(t *testing.T) {
	b, err := broker.Start(broker.Config{Ports: []int{0}, DisableAutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := New(Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}, DeliveryTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, "missing", &topics.Eviction{Function: "f", Worker: "w"}); err == nil {
		t.Fatal("publish to a missing topic succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("no brokers accepted")
	}
	if _, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"x:1"}}, Linger: -1}); err == nil {
		t.Fatal("negative linger accepted")
	}
	if _, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"x:1"}}, DeliveryTimeout: time.Millisecond}); err == nil {
		t.Fatal("delivery timeout under 1s accepted")
	}
	if _, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"x:1"}}, MaxRecordBytes: 100}); err == nil {
		t.Fatal("max record bytes under 512 accepted")
	}
}

// TestMaxRecordBytes: the producer writes any record the topic's default
// max.message.bytes allows (franz-go's own default stops short of it), a
// record that Fits is written, and one that does not fails with
// MessageTooLarge.
func TestMaxRecordBytes(t *testing.T) {
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := New(Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(0)
	if p.MaxRecordBytes() != topics.MaxMessageBytes {
		t.Fatalf("MaxRecordBytes %d, want %d", p.MaxRecordBytes(), topics.MaxMessageBytes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(p.Client()).CreateTopic(ctx, 1, 1, nil, "big"); err != nil {
		t.Fatal(err)
	}
	headers := []kgo.RecordHeader{{Key: "a", Value: []byte("b")}, {Key: "cc", Value: []byte("dd")}}
	exact := &kgo.Record{Topic: "big", Key: []byte("k"), Headers: headers}
	exact.Value = make([]byte, p.MaxRecordBytes()-BatchBytes(exact))
	over := &kgo.Record{Topic: "big", Key: []byte("k"), Headers: headers, Value: make([]byte, topics.MaxMessageBytes)}
	for _, tc := range []struct {
		name string
		r    *kgo.Record
		fits bool
	}{
		{"over franz-go's default", &kgo.Record{Topic: "big", Value: make([]byte, 1_020_000)}, true},
		{"exactly the limit", exact, true},
		{"over the limit", over, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p.Fits(tc.r) != tc.fits {
				t.Fatalf("Fits = %v, want %v (BatchBytes %d)", !tc.fits, tc.fits, BatchBytes(tc.r))
			}
			err := p.Client().ProduceSync(ctx, tc.r).FirstErr()
			if tc.fits && err != nil {
				t.Fatalf("a record that fits failed: %v", err)
			}
			if !tc.fits && !errors.Is(err, kerr.MessageTooLarge) {
				t.Fatalf("err = %v, want MessageTooLarge", err)
			}
		})
	}
}

// TestPublishHonoursContext: a caller waiting for an acknowledgement that
// cannot come (the broker is gone) gets its context's error when the
// context ends, not after the delivery timeout.
func TestPublishHonoursContext(t *testing.T) {
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}, DeliveryTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(0)
	b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = p.Publish(ctx, "gone", &topics.Eviction{Function: "f", Worker: "w"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
}
