package scheduler

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/kafkaconn/conntest"
	"github.com/pullsched/pullsched/topics"
)

// TestSecuredScheduler: with the right TLS and SASL settings a replica
// provisions the topics, reads the workers topic and starts its group
// consumer on a broker that requires them; with a wrong password Run stops
// at once with an error naming the mechanism.
func TestSecuredScheduler(t *testing.T) {
	pki := conntest.NewPKI(t)
	const pw = "scheduler-test-password"
	b := conntest.Broker(t, pki, []conntest.User{{Mechanism: kafkaconn.MechanismPlain, Name: "sched", Password: pw}})
	conn := kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile},
		SASL: kafkaconn.SASL{Mechanism: kafkaconn.MechanismPlain, User: "sched", PasswordFile: conntest.WriteFile(t, "pw", pw+"\n")}}
	cfg := Config{Kafka: conn, Topics: topics.Config{Prefix: "sec.", Partitions: 2, Replication: 1}, ID: "s1", Logger: testLogger()}

	t.Run("right", func(t *testing.T) {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		conntest.ReadyThenStop(t, s.Run, s.Ready())
	})
	t.Run("wrong", func(t *testing.T) {
		bad := cfg
		bad.Kafka.SASL.PasswordFile = conntest.WriteFile(t, "pw", "wrong\n")
		s, err := New(bad)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = s.Run(ctx)
		if err == nil || ctx.Err() != nil {
			t.Fatalf("Run = %v (ctx %v), want a refusal before the deadline", err, ctx.Err())
		}
		if !strings.Contains(err.Error(), "SASL PLAIN") || !strings.Contains(err.Error(), "login refused") {
			t.Fatalf("Run error %q should name the mechanism and say the login was refused", err)
		}
	})
}
