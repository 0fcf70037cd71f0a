package broker

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startTest(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.Ports == nil {
		cfg.Ports = []int{0}
	}
	b, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func newClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, ctx context.Context, seeds []string, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, seeds))
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if resp.Err != nil {
		t.Fatalf("create topic %s: %v", topic, resp.Err)
	}
}

func produce(t *testing.T, ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN polls until n records arrived or ctx ends.
func consumeN(t *testing.T, ctx context.Context, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before %v", len(got), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value", Config{}, true},
		{"free ports", Config{Ports: []int{0, 0, 0}}, true},
		{"localhost", Config{Host: "localhost"}, true},
		{"ipv6 loopback", Config{Host: "::1"}, true},
		{"hostname", Config{Host: "kafka.example"}, false},
		{"negative port", Config{Ports: []int{-1}}, false},
		{"port too big", Config{Ports: []int{70000}}, false},
		{"duplicate port", Config{Ports: []int{9100, 9100}}, false},
		{"negative partitions", Config{Partitions: -2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatal("Validate accepted a bad config")
				}
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("error %v does not wrap ErrConfig", err)
				}
			}
		})
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	if _, err := Start(Config{Ports: []int{-5}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Start with a bad port: got %v, want ErrConfig", err)
	}
}

func TestListensOnLoopbackOnly(t *testing.T) {
	b := startTest(t, Config{Ports: []int{0, 0}})
	addrs := b.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("Addrs = %v, want 2 brokers", addrs)
	}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatalf("address %q: %v", a, err)
		}
		if host != "127.0.0.1" || port == "0" {
			t.Fatalf("address %q: want 127.0.0.1 and a real port", a)
		}
	}
}

func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if b, err := Start(Config{Ports: []int{port}}); err == nil {
		b.Close()
		t.Fatalf("Start on a taken port %d succeeded", port)
	}
}

func TestProduceConsumeAndGroups(t *testing.T) {
	ctx := testCtx(t)
	b := startTest(t, Config{})
	seeds := b.Addrs()
	const topic = "roundtrip"
	createTopic(t, ctx, seeds, topic, 2)

	prod := newClient(t, seeds, kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 4 {
		produce(t, ctx, prod, &kgo.Record{Topic: topic, Key: []byte{byte('a' + i)}, Value: []byte("v")})
	}

	// A group member consumes everything and commits.
	group := func() *kgo.Client {
		return newClient(t, seeds, kgo.ConsumerGroup("g"), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	}
	c1 := group()
	got := consumeN(t, ctx, c1, 4)
	if len(got) != 4 {
		t.Fatalf("first member got %d records, want 4", len(got))
	}
	if err := c1.CommitRecords(ctx, got...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c1.Close()

	// The group's committed offsets cover all four records.
	adm := kadm.NewClient(newClient(t, seeds))
	offs, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 4 {
		t.Fatalf("committed offsets sum to %d, want 4", committed)
	}

	// A new member of the same group resumes after the commit: it sees
	// only the record produced now.
	produce(t, ctx, prod, &kgo.Record{Topic: topic, Key: []byte("z"), Value: []byte("late")})
	c2 := group()
	got = consumeN(t, ctx, c2, 1)
	if len(got) != 1 || string(got[0].Value) != "late" {
		t.Fatalf("second member got %d records (first %q), want only the late one", len(got), got[0].Value)
	}
}

func TestAutoCreateUsesPartitions(t *testing.T) {
	ctx := testCtx(t)
	b := startTest(t, Config{Partitions: 5})
	seeds := b.Addrs()
	prod := newClient(t, seeds, kgo.AllowAutoTopicCreation())
	produce(t, ctx, prod, &kgo.Record{Topic: "auto", Value: []byte("x")})

	adm := kadm.NewClient(newClient(t, seeds))
	td, err := adm.ListTopics(ctx, "auto")
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if n := len(td["auto"].Partitions); n != 5 {
		t.Fatalf("auto-created topic has %d partitions, want 5", n)
	}
}

func TestDisableAutoCreate(t *testing.T) {
	ctx := testCtx(t)
	b := startTest(t, Config{DisableAutoCreate: true})
	seeds := b.Addrs()
	prod := newClient(t, seeds, kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(2*time.Second))
	err := prod.ProduceSync(ctx, &kgo.Record{Topic: "nope", Value: []byte("x")}).FirstErr()
	if err == nil {
		t.Fatal("produce to a missing topic succeeded with auto-create disabled")
	}
}

func TestDataDirSurvivesRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	const topic = "durable"

	b1, err := Start(Config{Ports: []int{0}, DataDir: dir})
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	seeds := b1.Addrs()
	createTopic(t, ctx, seeds, topic, 1)
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, prod, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("kept")})
	prod.Close()
	adm1, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 1, LeaderEpoch: -1})
	if err := kadm.NewClient(adm1).CommitAllOffsets(ctx, "keeper", offs); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	adm1.Close()
	b1.Close()

	b2 := startTest(t, Config{Ports: []int{0}, DataDir: dir})
	seeds = b2.Addrs()
	adm := kadm.NewClient(newClient(t, seeds))
	td, err := adm.ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("topic after restart: %v / %v", err, td[topic].Err)
	}
	fetched, err := adm.FetchOffsets(ctx, "keeper")
	if err != nil {
		t.Fatalf("fetch offsets after restart: %v", err)
	}
	if o, ok := fetched.Lookup(topic, 0); !ok || o.At != 1 {
		t.Fatalf("committed offset after restart = %+v (found %v), want 1", o, ok)
	}
	cons := newClient(t, seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := consumeN(t, ctx, cons, 1)
	if string(got[0].Key) != "k" || string(got[0].Value) != "kept" {
		t.Fatalf("record after restart = %q=%q, want k=kept", got[0].Key, got[0].Value)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	var buf bytes.Buffer // read only after Run returned
	log := zerolog.New(&buf)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Ports: []int{0}, Logger: log}) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	out := buf.String()
	if !strings.Contains(out, "embedded broker listening") || !strings.Contains(out, "127.0.0.1:") {
		t.Fatalf("Run did not log its address: %s", out)
	}
}

func TestRunFailsOnBadConfig(t *testing.T) {
	if err := Run(context.Background(), Config{Ports: []int{1, 1}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Run with duplicate ports: got %v, want ErrConfig", err)
	}
}

func TestLoggerBridgeLevels(t *testing.T) {
	var buf bytes.Buffer
	br := zerologBridge{zerolog.New(&buf).Level(zerolog.DebugLevel)}
	br.Logf(kfake.LogLevelError, "bad %d", 1)
	br.Logf(kfake.LogLevelWarn, "odd %d", 2)
	br.Logf(kfake.LogLevelInfo, "request %d", 3)
	br.Logf(kfake.LogLevelDebug, "detail %d", 4) // trace: below the logger's level
	br.Logf(kfake.LogLevelNone, "never")
	want := []string{
		`{"level":"error","subsystem":"kfake","message":"bad 1"}`,
		`{"level":"warn","subsystem":"kfake","message":"odd 2"}`,
		`{"level":"debug","subsystem":"kfake","message":"request 3"}`,
	}
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("bridge wrote\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
