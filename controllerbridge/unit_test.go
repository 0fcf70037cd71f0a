package controllerbridge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
)

func TestBookFirstResultWins(t *testing.T) {
	b := newBook(time.Minute, 10, 1<<30, 10)
	t0 := time.Unix(1000, 0)
	ch, ok := b.register("a", true, t0, t0.Add(time.Second))
	if !ok {
		t.Fatal("register refused")
	}
	if out := b.deliver(&topics.Result{ID: "a", Status: 200, Worker: "w1"}, t0); out != outDelivered {
		t.Fatalf("first result: %s", out)
	}
	if r := <-ch; r.Worker != "w1" {
		t.Errorf("waiter got %+v", r)
	}
	if out := b.deliver(&topics.Result{ID: "a", Status: 200, Worker: "w2"}, t0); out != outDuplicate {
		t.Errorf("second result: %s", out)
	}
	if r, known := b.lookup("a", t0); !known || r.Worker != "w1" {
		t.Errorf("lookup %+v %v", r, known)
	}
	if out := b.deliver(&topics.Result{ID: "zz", Status: 200}, t0); out != outUnknown {
		t.Errorf("foreign result: %s", out)
	}
	if b.waiting() != 0 {
		t.Errorf("%d waiting", b.waiting())
	}
}

func TestBookPendingStoredAndExpiry(t *testing.T) {
	b := newBook(time.Minute, 10, 1<<30, 10)
	t0 := time.Unix(1000, 0)
	if _, ok := b.register("nb", false, t0, t0.Add(10*time.Second)); !ok {
		t.Fatal("register refused")
	}
	if b.waiting() != 0 {
		t.Error("non-blocking registered a waiter")
	}
	if r, known := b.lookup("nb", t0.Add(70*time.Second-1)); !known || r != nil {
		t.Errorf("pending lookup %v %v", r, known)
	}
	// Pending: remembered until deadline+margin (10s) plus the TTL (1m).
	if _, known := b.lookup("nb", t0.Add(70*time.Second)); known {
		t.Error("pending activation outlived deadline + TTL")
	}

	ch, _ := b.register("bl", true, t0, t0.Add(10*time.Second))
	b.unwait("bl", ch) // the client went away
	t1 := t0.Add(5 * time.Second)
	if out := b.deliver(&topics.Result{ID: "bl", Status: 200}, t1); out != outStored {
		t.Errorf("result after unwait: %s", out)
	}
	select {
	case r := <-ch:
		t.Errorf("a dropped waiter got %+v", r)
	default:
	}
	// A result is kept for the TTL from when it came.
	if _, known := b.lookup("bl", t1.Add(time.Minute-1)); !known {
		t.Error("result forgotten before its TTL")
	}
	if _, known := b.lookup("bl", t1.Add(time.Minute)); known {
		t.Error("result kept past its TTL")
	}
	if out := b.deliver(&topics.Result{ID: "bl", Status: 200}, t1.Add(time.Minute)); out != outUnknown {
		t.Errorf("result for an expired activation: %s", out)
	}
}

func TestBookBounds(t *testing.T) {
	b := newBook(time.Minute, 3, 1<<30, 2)
	t0 := time.Unix(1000, 0)
	for i, id := range []string{"a", "b"} {
		if _, ok := b.register(id, true, t0, t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("register %s refused", id)
		}
	}
	if _, ok := b.register("c", true, t0, t0); ok {
		t.Error("third waiter accepted with MaxWaiting 2")
	}
	if _, ok := b.register("c", false, t0, t0.Add(5*time.Second)); !ok {
		t.Error("non-blocking refused while waiters are full")
	}
	// The store is full (a, b, c); d evicts the one closest to expiry: a.
	if _, ok := b.register("d", false, t0, t0.Add(6*time.Second)); !ok {
		t.Fatal("register d refused")
	}
	st := b.stats()
	if st.Activations != 3 || st.Evicted != 1 {
		t.Errorf("stats %+v", st)
	}
	if _, known := b.lookup("a", t0); known {
		t.Error("a not evicted")
	}
	// a's waiter still gets its result even though the store forgot it.
	if out := b.deliver(&topics.Result{ID: "a", Status: 200}, t0); out != outDelivered {
		t.Errorf("a: %s", out)
	}
	b.forget("b")
	if _, known := b.lookup("b", t0); known || b.waiting() != 0 {
		t.Errorf("forget left b behind (waiting %d)", b.waiting())
	}
}

func TestParseTimeout(t *testing.T) {
	good := map[string]time.Duration{"30s": 30 * time.Second, "1m30s": 90 * time.Second, "90": 90 * time.Second,
		"2.5": 2500 * time.Millisecond, "250ms": 250 * time.Millisecond}
	for in, want := range good {
		if got, err := parseTimeout(in); err != nil || got != want {
			t.Errorf("parseTimeout(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "0", "0s", "-5", "-1s", "NaN", "Inf", "1e300"} {
		if got, err := parseTimeout(in); err == nil {
			t.Errorf("parseTimeout(%q) = %s, want an error", in, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:9092"}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	d := ok.WithDefaults()
	if d.Listen != DefaultListen || d.MaxBody != DefaultMaxBody || DefaultMaxBody < 1<<20-1024 || d.DefaultTimeout != time.Minute || d.ActivationTTL != 10*time.Minute ||
		!topics.ValidID(d.ID) || !strings.HasPrefix(d.ID, "controller-") || d.writeTimeout() < d.MaxTimeout {
		t.Errorf("defaults %+v", d)
	}
	bad := []func(*Config){
		func(c *Config) { c.Kafka.Brokers = nil },
		func(c *Config) { c.ID = "has space" },
		func(c *Config) { c.ID = ".." },
		func(c *Config) { c.MaxBody = -1 },
		func(c *Config) { c.DefaultTimeout = time.Hour; c.MaxTimeout = time.Minute },
		func(c *Config) { c.DrainTimeout = -time.Second },
		func(c *Config) { c.MaxWaiting = -1 },
		func(c *Config) { c.Topics.Prefix = "a/b" },
	}
	for i, mod := range bad {
		c := ok
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("case %d: Validate() = %v, want ErrConfig", i, err)
		}
		if ctl, err := New(c); err == nil {
			_ = ctl.Close()
			t.Errorf("case %d: New accepted an invalid config", i)
		}
	}
}

func TestCloseWithoutRun(t *testing.T) {
	c, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}, Listen: "127.0.0.1:0", ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.Addr()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The address is free again, and Run after Close refuses to start.
	c2, err := New(Config{Kafka: kafkaconn.Config{Brokers: []string{"127.0.0.1:1"}}, Listen: addr, ID: "x"})
	if err != nil {
		t.Fatalf("address still held after Close: %v", err)
	}
	_ = c2.Close()
	if err := c.Run(t.Context()); err == nil {
		t.Error("Run after Close returned nil")
	}
}
