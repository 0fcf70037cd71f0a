package consumer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

const (
	topic = "t.arrivals"
	dlq   = "t.dlq"
)

type env struct {
	brokers []string
	prod    *producer.Producer
}

func newEnv(t *testing.T) env {
	t.Helper()
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	p, err := producer.New(producer.Config{Kafka: kafkaconn.Config{Brokers: b.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(p.Client())
	for _, tp := range []string{topic, dlq} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp); err != nil {
			t.Fatal(err)
		}
	}
	return env{brokers: b.Addrs(), prod: p}
}

func (e env) arrivals(t *testing.T, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = topics.NewID()
		if err := e.prod.Publish(ctx, topic, &topics.Arrival{ID: ids[i], Function: "f"}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func decodeArrival(_ string, b []byte) (topics.Event, error) { return topics.DecodeArrival(b) }

// recorder is a Handler that keeps every delivery and finishes those its
// finish func approves.
type recorder struct {
	mu     sync.Mutex
	got    []*Delivery
	finish func(*Delivery) bool
	seen   chan struct{}
}

func newRecorder(finish func(*Delivery) bool) *recorder {
	return &recorder{finish: finish, seen: make(chan struct{}, 1000)}
}

func (r *recorder) Handle(_ context.Context, batch []*Delivery) {
	for _, d := range batch {
		r.mu.Lock()
		r.got = append(r.got, d)
		r.mu.Unlock()
		if r.finish(d) {
			d.Done()
		}
		r.seen <- struct{}{}
	}
}
func (r *recorder) Assigned(context.Context, map[string][]int32) {}
func (r *recorder) Revoked(context.Context, map[string][]int32)  {}

func (r *recorder) wait(t *testing.T, n int) []*Delivery {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-r.seen:
		case <-timeout:
			t.Fatalf("got %d deliveries, want %d", i, n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Delivery(nil), r.got...)
}

func run(t *testing.T, e env, h Handler, mod func(*Config), got ...func(*Consumer)) (stop func()) {
	t.Helper()
	cfg := Config{Kafka: kafkaconn.Config{Brokers: e.brokers}, Group: "g", Topics: []string{topic}, Decode: decodeArrival,
		DLQ: dlq, Producer: e.prod, CommitInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		f(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestUnfinishedComeBack: offsets of records whose work is not done are not
// committed, so a restarted consumer gets them again — and only them and
// what follows.
func TestUnfinishedComeBack(t *testing.T) {
	e := newEnv(t)
	ids := e.arrivals(t, 10)
	// Finish everything but the 4th record.
	first := newRecorder(func(d *Delivery) bool { return d.Event.(*topics.Arrival).ID != ids[3] })
	stop := run(t, e, first, nil)
	first.wait(t, 10)
	stop()

	second := newRecorder(func(*Delivery) bool { return true })
	stop = run(t, e, second, nil)
	got := second.wait(t, 7)
	stop()
	if a := got[0].Event.(*topics.Arrival); a.ID != ids[3] {
		t.Fatalf("restart began at %s, want the unfinished %s", a.ID, ids[3])
	}
	for i, d := range got {
		if d.Event.(*topics.Arrival).ID != ids[3+i] {
			t.Fatalf("delivery %d out of order", i)
		}
	}

	// Everything is finished now: a third start gets nothing.
	third := newRecorder(func(*Delivery) bool { return true })
	stop = run(t, e, third, nil)
	e.arrivals(t, 1)
	if got := third.wait(t, 1); len(got) != 1 {
		t.Fatalf("third run got %d records, want only the new one", len(got))
	}
	stop()
}

// TestDeadLetter: an undecodable record goes to the dlq with the reason in
// a header, and the records after it are still handled.
func TestDeadLetter(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad := []*kgo.Record{
		{Topic: topic, Key: []byte("f"), Value: []byte("not json")},
		{Topic: topic, Key: []byte("f"), Value: []byte(`{"v":9,"type":"arrival"}`)},
	}
	if err := e.prod.Client().ProduceSync(ctx, bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ids := e.arrivals(t, 1)
	rec := newRecorder(func(*Delivery) bool { return true })
	stop := run(t, e, rec, nil)
	got := rec.wait(t, 1)
	stop()
	if got[0].Event.(*topics.Arrival).ID != ids[0] {
		t.Fatal("good record not handled")
	}

	var dead []*kgo.Record
	err := ReadRange(ctx, ReaderConfig{Kafka: kafkaconn.Config{Brokers: e.brokers}, Topic: dlq}, nil, time.Time{}, func(r *kgo.Record) error {
		dead = append(dead, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 {
		t.Fatalf("dlq has %d records, want 2", len(dead))
	}
	for i, r := range dead {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[HeaderError] == "" || h[HeaderTopic] != topic || string(r.Value) != string(bad[i].Value) {
			t.Fatalf("dead letter %d: headers %v value %q", i, h, r.Value)
		}
	}
	// The undecodable records' offsets were committed with the good one.
	rec2 := newRecorder(func(*Delivery) bool { return true })
	stop = run(t, e, rec2, nil)
	e.arrivals(t, 1)
	rec2.wait(t, 1)
	stop()
}

// TestPausesWhenSaturated: a partition with MaxOutstanding unfinished
// records stops being fetched until its work drains.
func TestPausesWhenSaturated(t *testing.T) {
	e := newEnv(t)
	e.arrivals(t, 20)
	var mu sync.Mutex
	var held []*Delivery
	rec := newRecorder(func(d *Delivery) bool {
		mu.Lock()
		held = append(held, d)
		mu.Unlock()
		return false
	})
	stop := run(t, e, rec, func(c *Config) { c.MaxOutstanding = 4; c.MaxPollRecords = 4 })
	defer stop()
	rec.wait(t, 4)
	// Paused: releasing the held records is what lets the rest through.
	mu.Lock()
	for _, d := range held {
		d.Done()
	}
	held = nil
	mu.Unlock()
	rec.wait(t, 4)
	rec.mu.Lock()
	n := len(rec.got)
	rec.mu.Unlock()
	if n > 12 {
		t.Fatalf("got %d records with at most 4 outstanding allowed", n)
	}
}

func TestReadRangeFrom(t *testing.T) {
	e := newEnv(t)
	e.arrivals(t, 3)
	// Offsets by time have millisecond resolution: keep the mark clear of
	// the records on both sides.
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	ids := e.arrivals(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	err := ReadRange(ctx, ReaderConfig{Kafka: kafkaconn.Config{Brokers: e.brokers}, Topic: topic}, nil, mid, func(r *kgo.Record) error {
		a, err := topics.DecodeArrival(r.Value)
		if err != nil {
			return err
		}
		got = append(got, a.ID)
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != ids[0] {
		t.Fatalf("got %v err %v, want the 2 records after the mark", got, err)
	}
	stop := errors.New("stop")
	err = ReadRange(ctx, ReaderConfig{Kafka: kafkaconn.Config{Brokers: e.brokers}, Topic: topic}, nil, time.Time{}, func(*kgo.Record) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("callback error not returned: %v", err)
	}
}

func TestFollowCatchesUp(t *testing.T) {
	e := newEnv(t)
	e.arrivals(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var n int
	up := make(chan int, 1)
	more := make(chan struct{})
	go func() {
		_ = Follow(ctx, ReaderConfig{Kafka: kafkaconn.Config{Brokers: e.brokers}, Topic: topic}, func(*kgo.Record) {
			n++
			if n == 4 {
				close(more)
			}
		}, func() { up <- n })
	}()
	select {
	case got := <-up:
		if got != 3 {
			t.Fatalf("caught up after %d records, want 3", got)
		}
	case <-ctx.Done():
		t.Fatal("never caught up")
	}
	e.arrivals(t, 1)
	select {
	case <-more:
	case <-ctx.Done():
		t.Fatal("did not follow a new record")
	}
}

// TestStuck: a partition holding unfinished records is reported once none
// has finished for the threshold, by the consumer's clock; finishing one
// restarts the wait; finishing all clears it.
func TestStuck(t *testing.T) {
	e := newEnv(t)
	var clock atomic.Int64
	t0 := time.Unix(1_000_000, 0)
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	rec := newRecorder(func(*Delivery) bool { return false })
	var c *Consumer
	stop := run(t, e, rec, nil, func(x *Consumer) { c = x; c.now = now })
	defer stop()
	e.arrivals(t, 3)
	got := rec.wait(t, 3)
	const after = DefaultStuckAfter

	if s := c.Stuck(t0.Add(after-time.Second), after); s != nil {
		t.Fatalf("stuck before the threshold: %v", s)
	}
	want := Stalled{Topic: topic, Partition: 0, Outstanding: 3, Idle: after}
	if s := c.Stuck(t0.Add(after), after); len(s) != 1 || s[0] != want {
		t.Fatalf("at the threshold: %v, want [%v]", s, want)
	}

	t1 := t0.Add(time.Minute)
	clock.Store(t1.UnixNano())
	got[1].Done()
	if s := c.Stuck(t1.Add(after-time.Second), after); s != nil {
		t.Fatalf("stuck right after a record finished: %v", s)
	}
	if s := c.Stuck(t1.Add(after), after); len(s) != 1 || s[0].Outstanding != 3 {
		t.Fatalf("after the threshold again: %v, want 3 outstanding (offset 0 still holds the commit)", s)
	}
	got[0].Done()
	got[2].Done()
	if s := c.Stuck(t1.Add(time.Hour), after); s != nil {
		t.Fatalf("stuck with nothing outstanding: %v", s)
	}
}

// TestStaticMemberTakesOver: a member with an InstanceID does not leave the
// group when it stops (as after a crash), and its replacement with the same
// id gets the partition at once — long before the old member's session
// (a minute here) would have ended.
func TestStaticMemberTakesOver(t *testing.T) {
	e := newEnv(t)
	static := func(c *Config) { c.InstanceID, c.SessionTimeout = "w1", time.Minute }
	first := newRecorder(func(*Delivery) bool { return true })
	stop := run(t, e, first, static)
	e.arrivals(t, 1)
	first.wait(t, 1)
	stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := kadm.NewClient(e.prod.Client()).DescribeGroups(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	g := groups["g"]
	if len(g.Members) != 1 || g.Members[0].InstanceID == nil || *g.Members[0].InstanceID != "w1" {
		t.Fatalf("after the static member stopped, group members %+v; want it still there", g.Members)
	}

	second := newRecorder(func(*Delivery) bool { return true })
	stop = run(t, e, second, static)
	defer stop()
	ids := e.arrivals(t, 1)
	if got := second.wait(t, 1); got[0].Event.(*topics.Arrival).ID != ids[0] {
		t.Fatalf("replacement got %v, want the new record", got[0].Event)
	}
}
