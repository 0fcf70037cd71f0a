package invokerbridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/kafkaconn/conntest"
	"github.com/pullsched/pullsched/topics"
)

// TestSecuredBridge: a pool bridge gets ready on a broker that requires
// TLS and SCRAM with the right settings, and stops at once, naming the
// mechanism, with a wrong password.
func TestSecuredBridge(t *testing.T) {
	pki := conntest.NewPKI(t)
	b := conntest.Broker(t, pki, []conntest.User{{Mechanism: kafkaconn.MechanismScramSHA256, Name: "bridge", Password: "right"}})
	cfg := Config{
		Kafka: kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile},
			SASL: kafkaconn.SASL{Mechanism: kafkaconn.MechanismScramSHA256, User: "bridge", Password: "right"}},
		Topics: topics.Config{Prefix: "sec.", Partitions: 2, Replication: 1},
		Listen: "127.0.0.1:0", ID: "bridge-sec", Pool: true, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	}
	t.Run("right", func(t *testing.T) {
		br, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		conntest.ReadyThenStop(t, br.Run, br.Ready())
	})
	t.Run("wrong", func(t *testing.T) {
		bad := cfg
		bad.Kafka.SASL.Password = "wrong"
		br, err := New(bad)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = br.Run(ctx)
		if err == nil || ctx.Err() != nil {
			t.Fatalf("Run = %v (ctx %v), want a refusal before the deadline", err, ctx.Err())
		}
		if !strings.Contains(err.Error(), "SASL SCRAM-SHA-256") || !strings.Contains(err.Error(), "login refused") {
			t.Fatalf("Run error %q should name the mechanism and say the login was refused", err)
		}
	})
}
