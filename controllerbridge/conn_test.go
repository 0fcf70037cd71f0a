package controllerbridge

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/kafkaconn/conntest"
)

const connPassword = "controller-test-password"

// syncBuffer is a log sink safe for the controller's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecuredIngress: against a broker that requires TLS and SCRAM, the
// controller publishes arrivals, reads results, dead-letters junk with its
// headers, and shows the password nowhere (logs, /status, /metrics).
func TestSecuredIngress(t *testing.T) {
	pki := conntest.NewPKI(t)
	b := conntest.Broker(t, pki, []conntest.User{{Mechanism: kafkaconn.MechanismScramSHA512, Name: "ctl", Password: connPassword}})
	conn := kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile},
		SASL: kafkaconn.SASL{Mechanism: kafkaconn.MechanismScramSHA512, User: "ctl", Password: connPassword}}
	logs := &syncBuffer{}
	h := start(t, func(c *Config) {
		c.Kafka = conn
		c.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	startFake(t, h, echo())

	resp, body := call(t, "POST", h.base+"/run/echo-1", "", `{"x": 1}`)
	if resp.StatusCode != 200 || string(body) != `{"x": 1}` {
		t.Fatalf("run: %d %s", resp.StatusCode, body)
	}

	n := h.cfg.Topics.Names()
	junk := &kgo.Record{Topic: n.Results("ctl"), Value: []byte("junk"), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}}
	if err := h.prod.Client().ProduceSync(context.Background(), junk).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dead letter written", func() bool { return h.c.deadLetterCounts().Letters == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var letters []*kgo.Record
	if err := consumer.ReadRange(ctx, consumer.ReaderConfig{Kafka: conn, Topic: n.DLQ()}, nil, time.Time{}, func(r *kgo.Record) error {
		letters = append(letters, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || string(letters[0].Value) != "junk" || len(letters[0].Headers) == 0 || letters[0].Headers[0].Key != "trace" {
		t.Fatalf("dead letters %+v, want the junk result with its header", letters)
	}

	for _, path := range []string{"/status", "/metrics"} {
		if _, b := call(t, "GET", h.base+path, "", ""); strings.Contains(string(b), connPassword) {
			t.Errorf("%s shows the SASL password", path)
		}
	}
	h.shutdown()
	if strings.Contains(logs.String(), connPassword) {
		t.Errorf("logs show the SASL password:\n%s", logs.String())
	}
}

// TestSecuredIngressRefused: wrong credentials stop Run at start with an
// error naming the mechanism and user, before its context ends.
func TestSecuredIngressRefused(t *testing.T) {
	pki := conntest.NewPKI(t)
	b := conntest.Broker(t, pki, []conntest.User{{Mechanism: kafkaconn.MechanismScramSHA256, Name: "ctl", Password: connPassword}})
	cfg := testConfig(nil)
	cfg.Kafka = kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile},
		SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-256", User: "ctl", Password: "not-" + connPassword}}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want a refusal before the deadline", err, ctx.Err())
	}
	for _, want := range []string{"SASL SCRAM-SHA-256", `"ctl"`, "login refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), connPassword) {
		t.Errorf("Run error shows the password: %v", err)
	}
}
