package consumer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/kafkaconn/conntest"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// TestSecuredRoundTrip runs the producer, the group consumer (with its
// dead-letter path) and the plain reader against a broker that requires
// TLS and SASL, for each mechanism.
func TestSecuredRoundTrip(t *testing.T) {
	pki := conntest.NewPKI(t)
	const pw = "consumer-test-password"
	users := []conntest.User{
		{Mechanism: kafkaconn.MechanismPlain, Name: "p", Password: pw},
		{Mechanism: kafkaconn.MechanismScramSHA256, Name: "s256", Password: pw},
		{Mechanism: kafkaconn.MechanismScramSHA512, Name: "s512", Password: pw},
	}
	b := conntest.Broker(t, pki, users)
	for _, u := range users {
		t.Run(u.Mechanism, func(t *testing.T) {
			conn := kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile},
				SASL: kafkaconn.SASL{Mechanism: u.Mechanism, User: u.Name, Password: kafkaconn.Secret(u.Password)}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := producer.New(producer.Config{Kafka: conn})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(time.Second)
			if err := p.Ping(ctx); err != nil {
				t.Fatalf("ping: %v", err)
			}
			src, dead := "sec."+u.Name, "sec."+u.Name+".dlq"
			if _, err := kadm.NewClient(p.Client()).CreateTopics(ctx, 1, 1, nil, src, dead); err != nil {
				t.Fatal(err)
			}
			id := topics.NewID()
			if err := p.Publish(ctx, src, &topics.Arrival{ID: id, Function: "f"}); err != nil {
				t.Fatal(err)
			}
			if err := p.Client().ProduceSync(ctx, &kgo.Record{Topic: src, Value: []byte("junk"),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("kept")}}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder(func(*Delivery) bool { return true })
			c, err := New(Config{Kafka: conn, Group: "g-" + u.Name, Topics: []string{src}, Decode: decodeArrival,
				DLQ: dead, Producer: p, SessionTimeout: 6 * time.Second}, rec)
			if err != nil {
				t.Fatal(err)
			}
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(rctx) }()
			got := rec.wait(t, 1)
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if a, ok := got[0].Event.(*topics.Arrival); !ok || a.ID != id {
				t.Fatalf("consumed %+v, want arrival %s", got[0].Event, id)
			}
			var letters []*kgo.Record
			err = ReadRange(ctx, ReaderConfig{Kafka: conn, Topic: dead}, nil, time.Time{}, func(r *kgo.Record) error {
				letters = append(letters, r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(letters) != 1 || string(letters[0].Value) != "junk" || header(letters[0], "h") != "kept" || header(letters[0], HeaderTopic) != src {
				t.Fatalf("dead letters %+v, want the junk record with its header and origin", letters)
			}
		})
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestSecuredWrongPassword: a refused login fails the producer's ping and
// the reader at once, naming the mechanism, instead of retrying until ctx
// ends.
func TestSecuredWrongPassword(t *testing.T) {
	pki := conntest.NewPKI(t)
	b := conntest.Broker(t, pki, []conntest.User{{Mechanism: kafkaconn.MechanismScramSHA256, Name: "app", Password: "right"}})
	conn := kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile},
		SASL: kafkaconn.SASL{Mechanism: "scram-sha-256", User: "app", Password: "wrong"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := producer.New(producer.Config{Kafka: conn})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(time.Second)
	err = p.Ping(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("ping = %v (ctx %v), want a refusal before the deadline", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "SASL SCRAM-SHA-256") || !strings.Contains(err.Error(), "login refused") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("ping error %q should name the mechanism, say the login was refused and not show the password", err)
	}
	err = ReadRange(ctx, ReaderConfig{Kafka: conn, Topic: "x"}, nil, time.Time{}, func(*kgo.Record) error { return nil })
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reader = %v, want a refusal before the deadline", err)
	}
}
