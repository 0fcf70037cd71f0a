package it

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// contract is a broker with pullsched's topics provisioned under the test's
// prefix, and a producer.
type contract struct {
	env  Env
	cfg  topics.Config
	n    topics.Names
	prod *producer.Producer
}

func newContract(t *testing.T, partitions int32) contract {
	t.Helper()
	env := Broker(t)
	cfg := topics.Config{Prefix: env.Prefix, Partitions: partitions, Replication: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := env.Admin(t)
	if _, err := topics.EnsureAll(ctx, adm, cfg); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	if _, err := topics.Ensure(ctx, adm, cfg.InvokerSpec("w1"), cfg.ResultsSpec("c1")); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	p, err := producer.New(producer.Config{Kafka: kafkaconn.Config{Brokers: env.Seeds}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(5 * time.Second) })
	return contract{env: env, cfg: cfg, n: cfg.Names(), prod: p}
}

func readAll(t *testing.T, c contract, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	err := consumer.ReadRange(ctx, consumer.ReaderConfig{Kafka: kafkaconn.Config{Brokers: c.env.Seeds}, Topic: topic}, nil, time.Time{}, func(r *kgo.Record) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return out
}

// TestEveryEventRoundTrips: each event kind, published by our producer to
// the topic and key DESIGN.md gives it, is read back unchanged.
func TestEveryEventRoundTrips(t *testing.T) {
	c := newContract(t, 3)
	at := time.Now().UTC().Truncate(time.Millisecond)
	id := topics.NewID()
	events := []struct {
		topic string
		ev    topics.Event
	}{
		{c.n.Arrivals(), &topics.Arrival{ID: id, Function: "pyaes-1", Payload: json.RawMessage(`{"length_of_message": 100}`), Reply: "c1", Arrived: at, Deadline: at.Add(time.Minute)}},
		{c.n.Invoker("w1"), &topics.Assignment{ID: id, Function: "pyaes-1", Worker: "w1", Payload: json.RawMessage(`{}`), Reply: "c1", Warm: true, Assigned: at}},
		{c.n.WorkerEvents(), &topics.Completion{ID: id, Function: "pyaes-1", Worker: "w1", OK: true, Status: 200, Start: topics.StartWarm, DurationMs: 149, At: at}},
		{c.n.WorkerEvents(), &topics.Eviction{Function: "pyaes-1", Worker: "w1", At: at}},
		{c.n.Results("c1"), &topics.Result{ID: id, Function: "pyaes-1", Status: 200, Body: json.RawMessage(`{"ok":true}`), Worker: "w1", Source: "worker", At: at}},
		{c.n.Workers(), &topics.Worker{ID: "w1", URL: "http://127.0.0.1:8081", State: topics.WorkerActive, Capacity: 4, Healthy: true, At: at}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, e := range events {
		if err := c.prod.Publish(ctx, e.topic, e.ev); err != nil {
			t.Fatalf("%s: %v", e.ev.Kind(), err)
		}
	}
	got := map[string][]*kgo.Record{}
	for _, tp := range []string{c.n.Arrivals(), c.n.Invoker("w1"), c.n.WorkerEvents(), c.n.Results("c1"), c.n.Workers()} {
		got[tp] = readAll(t, c, tp)
	}
	seen := map[string]int{}
	for _, e := range events {
		recs := got[e.topic]
		i := seen[e.topic]
		seen[e.topic]++
		if i >= len(recs) {
			t.Fatalf("%s: missing on %s", e.ev.Kind(), e.topic)
		}
		r := recs[i]
		if string(r.Key) != topics.Key(e.ev) {
			t.Errorf("%s: key %q, want %q", e.ev.Kind(), r.Key, topics.Key(e.ev))
		}
		back, err := topics.Decode(r.Value)
		if err != nil {
			t.Fatalf("%s: %v", e.ev.Kind(), err)
		}
		if !reflect.DeepEqual(back, e.ev) {
			t.Errorf("%s changed:\n got %+v\nwant %+v", e.ev.Kind(), back, e.ev)
		}
	}
}

// handler collects the deliveries of a consumer and finishes those ok
// approves.
type handler struct {
	mu  sync.Mutex
	got []*consumer.Delivery
	ok  func(*consumer.Delivery) bool
	ch  chan struct{}
}

func newHandler(ok func(*consumer.Delivery) bool) *handler {
	return &handler{ok: ok, ch: make(chan struct{}, 10000)}
}

func (h *handler) Handle(_ context.Context, batch []*consumer.Delivery) {
	for _, d := range batch {
		h.mu.Lock()
		h.got = append(h.got, d)
		h.mu.Unlock()
		if h.ok(d) {
			d.Done()
		}
		h.ch <- struct{}{}
	}
}
func (h *handler) Assigned(context.Context, map[string][]int32) {}
func (h *handler) Revoked(context.Context, map[string][]int32)  {}

func (h *handler) wait(t *testing.T, n int) []*consumer.Delivery {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-h.ch:
		case <-deadline:
			t.Fatalf("%d deliveries, want %d", i, n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*consumer.Delivery(nil), h.got...)
}

func startConsumer(t *testing.T, c contract, group string, h consumer.Handler) (stop func()) {
	t.Helper()
	cons, err := consumer.New(consumer.Config{
		Kafka: kafkaconn.Config{Brokers: c.env.Seeds}, Group: group, Topics: []string{c.n.Arrivals()},
		Decode: func(_ string, b []byte) (topics.Event, error) { return topics.DecodeArrival(b) },
		DLQ:    c.n.DLQ(), Producer: c.prod, CommitInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second,
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}
}

func saramaConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Idempotent = false
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	return sc
}

// TestSaramaPipeline: the contract is client-agnostic. An outside pipeline
// written with sarama produces arrivals (JSON it builds itself, placed with
// Kafka's murmur2 partitioning) that our consumer decodes, and reads with
// sarama the results our producer wrote.
func TestSaramaPipeline(t *testing.T) {
	c := newContract(t, 3)
	sc := saramaConfig()
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	sp, err := sarama.NewSyncProducer(c.env.Seeds, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ids := map[string]bool{}
	for i := 0; i < 5; i++ {
		id := topics.NewID()
		ids[id] = true
		fn := fmt.Sprintf("matmul-%d", i)
		value := fmt.Sprintf(`{"v":1,"type":"arrival","id":%q,"fn":%q,"payload":{"n": 100},"reply":"c1"}`, id, fn)
		_, _, err := sp.SendMessage(&sarama.ProducerMessage{
			Topic: c.n.Arrivals(), Key: sarama.StringEncoder(fn), Value: sarama.StringEncoder(value),
			Partition: topics.PartitionFor([]byte(fn), 3),
		})
		if err != nil {
			t.Fatalf("sarama produce: %v", err)
		}
	}
	h := newHandler(func(*consumer.Delivery) bool { return true })
	stop := startConsumer(t, c, c.env.Prefix+"g", h)
	got := h.wait(t, 5)
	stop()
	for _, d := range got {
		a := d.Event.(*topics.Arrival)
		if !ids[a.ID] || string(a.Payload) != `{"n": 100}` {
			t.Fatalf("decoded %+v", a)
		}
		if want := topics.PartitionFor([]byte(a.Function), 3); d.Record.Partition != want {
			t.Fatalf("arrival of %s on partition %d, want %d", a.Function, d.Record.Partition, want)
		}
	}

	// And back: our producer writes a result, sarama reads it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := &topics.Result{ID: topics.NewID(), Status: 200, Body: json.RawMessage(`{"answer": 42}`), Worker: "w1"}
	if err := c.prod.Publish(ctx, c.n.Results("c1"), res); err != nil {
		t.Fatal(err)
	}
	sconsumer, err := sarama.NewConsumer(c.env.Seeds, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sconsumer.Close()
	pc, err := sconsumer.ConsumePartition(c.n.Results("c1"), 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case m := <-pc.Messages():
		if string(m.Key) != res.ID {
			t.Fatalf("key %q, want the activation id", m.Key)
		}
		var back struct {
			V    int             `json:"v"`
			Type string          `json:"type"`
			ID   string          `json:"id"`
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal(m.Value, &back); err != nil || back.V != 1 || back.Type != "result" || back.ID != res.ID || string(back.Body) != `{"answer": 42}` {
			t.Fatalf("sarama read %s (%v)", m.Value, err)
		}
	case <-ctx.Done():
		t.Fatal("sarama read nothing")
	}
}

// TestDeadLetterAndGoOn: an undecodable arrival lands in the dlq with the
// reason in a header, and the consumer handles what follows.
func TestDeadLetterAndGoOn(t *testing.T) {
	c := newContract(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := &kgo.Record{Topic: c.n.Arrivals(), Key: []byte("f"), Value: []byte(`{"v":1,"type":"arrival","id":"nope","fn":"f"}`)}
	if err := c.prod.Client().ProduceSync(ctx, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	good := &topics.Arrival{ID: topics.NewID(), Function: "f"}
	if err := c.prod.Publish(ctx, c.n.Arrivals(), good); err != nil {
		t.Fatal(err)
	}
	h := newHandler(func(*consumer.Delivery) bool { return true })
	stop := startConsumer(t, c, c.env.Prefix+"g", h)
	got := h.wait(t, 1)
	stop()
	if got[0].Event.(*topics.Arrival).ID != good.ID {
		t.Fatal("the good arrival was not handled")
	}
	dead := readAll(t, c, c.n.DLQ())
	if len(dead) != 1 || string(dead[0].Value) != string(bad.Value) {
		t.Fatalf("dlq: %v", dead)
	}
	var reason string
	for _, h := range dead[0].Headers {
		if h.Key == consumer.HeaderError {
			reason = string(h.Value)
		}
	}
	if reason == "" {
		t.Fatal("dead letter carries no reason")
	}
	t.Logf("dead-letter reason: %s", reason)
}

// TestUnfinishedOffsetsNotCommitted: restart a consumer and the records
// whose work was not finished come again.
func TestUnfinishedOffsetsNotCommitted(t *testing.T) {
	c := newContract(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var ids []string
	for i := 0; i < 6; i++ {
		a := &topics.Arrival{ID: topics.NewID(), Function: "f"}
		ids = append(ids, a.ID)
		if err := c.prod.Publish(ctx, c.n.Arrivals(), a); err != nil {
			t.Fatal(err)
		}
	}
	group := c.env.Prefix + "g"
	first := newHandler(func(d *consumer.Delivery) bool { return d.Event.(*topics.Arrival).ID != ids[2] })
	stop := startConsumer(t, c, group, first)
	first.wait(t, 6)
	stop()

	second := newHandler(func(*consumer.Delivery) bool { return true })
	stop = startConsumer(t, c, group, second)
	got := second.wait(t, 4)
	stop()
	for i, d := range got {
		if id := d.Event.(*topics.Arrival).ID; id != ids[2+i] {
			t.Fatalf("after restart delivery %d is %s, want %s", i, id, ids[2+i])
		}
	}
}
