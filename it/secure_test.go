package it

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/cluster"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// Environment variables of the SASL_SSL tests: a listener with TLS and
// SASL (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN for one user), as
// `scripts/kafka.sh secure start` runs and describes in its client.env.
const (
	// EnvSecure names the SASL_SSL brokers, comma-separated. Without it
	// the Secure tests do not run.
	EnvSecure = "PULLSCHED_IT_SECURE"
	// EnvSecureCA is the PEM file of the CA that signed the brokers'
	// certificates.
	EnvSecureCA = "PULLSCHED_IT_SECURE_CA"
	// EnvSecureUser and EnvSecurePassword are the SASL user's credentials.
	EnvSecureUser     = "PULLSCHED_IT_SECURE_USER"
	EnvSecurePassword = "PULLSCHED_IT_SECURE_PASSWORD"
	// EnvSecureMechanisms lists the mechanisms the listener offers,
	// comma-separated. Default SCRAM-SHA-256,SCRAM-SHA-512,PLAIN.
	EnvSecureMechanisms = "PULLSCHED_IT_SECURE_MECHANISMS"
)

// secureEnv is what the Secure tests connect with.
type secureEnv struct {
	seeds      []string
	ca         string
	user       string
	password   string
	mechanisms []string
}

// conn returns the connection settings for mechanism with the given
// password, trusting the listener's CA.
func (s secureEnv) conn(mechanism, password string) kafkaconn.Config {
	return kafkaconn.Config{
		Brokers: s.seeds,
		TLS:     kafkaconn.TLS{Enabled: true, CAFile: s.ca},
		SASL:    kafkaconn.SASL{Mechanism: mechanism, User: s.user, Password: kafkaconn.Secret(password)},
	}
}

// secureSetup reads the Secure tests' environment, or skips the test
// saying why it did not run.
func secureSetup(t *testing.T) secureEnv {
	t.Helper()
	addr := strings.TrimSpace(os.Getenv(EnvSecure))
	if addr == "" {
		t.Skipf("not run: %s is not set; it names a SASL_SSL listener, with %s, %s and %s, e.g. "+
			"`scripts/kafka.sh secure start` and the values of `scripts/kafka.sh secure env` "+
			"(scripts/ci-kafka-extra.sh does both)", EnvSecure, EnvSecureCA, EnvSecureUser, EnvSecurePassword)
	}
	s := secureEnv{
		ca:       os.Getenv(EnvSecureCA),
		user:     os.Getenv(EnvSecureUser),
		password: os.Getenv(EnvSecurePassword),
	}
	for _, b := range strings.Split(addr, ",") {
		if b = strings.TrimSpace(b); b != "" {
			s.seeds = append(s.seeds, b)
		}
	}
	var missing []string
	for name, v := range map[string]string{EnvSecureCA: s.ca, EnvSecureUser: s.user, EnvSecurePassword: s.password} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s is set but %s not", EnvSecure, strings.Join(missing, ", "))
	}
	ms := os.Getenv(EnvSecureMechanisms)
	if ms == "" {
		ms = "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"
	}
	for _, m := range strings.Split(ms, ",") {
		if m = strings.TrimSpace(m); m != "" {
			s.mechanisms = append(s.mechanisms, m)
		}
	}
	return s
}

// secureClient builds a client from c and its options.
func secureClient(t *testing.T, c kafkaconn.Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	conn, err := c.ClientOpts()
	if err != nil {
		t.Fatalf("client options: %v", err)
	}
	cl, err := kgo.NewClient(append(conn, opts...)...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestSecureRoundTrip: over SASL_SSL, with each mechanism the listener
// offers and the right credentials, a topic is created, a record produced
// (acks=all) and read back.
func TestSecureRoundTrip(t *testing.T) {
	s := secureSetup(t)
	prefix := TopicPrefix(t)
	for _, mech := range s.mechanisms {
		t.Run(mech, func(t *testing.T) {
			c := s.conn(mech, s.password)
			topic := prefix + strings.ToLower(mech)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			admCl := secureClient(t, c)
			if err := kafkaconn.Ping(ctx, c, admCl); err != nil {
				t.Fatalf("ping: %v", err)
			}
			adm := kadm.NewClient(admCl)
			resp, err := adm.CreateTopic(ctx, 1, -1, nil, topic)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				t.Fatalf("create %s over SASL_SSL %s: %v", topic, mech, kafkaconn.Explain(c, err))
			}
			prod := secureClient(t, c, kgo.RequiredAcks(kgo.AllISRAcks()))
			want := "hello over " + mech
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(want)}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", kafkaconn.Explain(c, err))
			}
			cons := secureClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			for {
				fs := cons.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("no record back within 60s: %v", err)
				}
				for _, e := range fs.Errors() {
					t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, kafkaconn.Explain(c, e.Err))
				}
				if recs := fs.Records(); len(recs) > 0 {
					if got := string(recs[0].Value); got != want {
						t.Fatalf("read %q, want %q", got, want)
					}
					break
				}
			}
		})
	}
}

// TestSecureWrongCredentials: a wrong password (with each mechanism), an
// unknown user, an untrusted CA and a client without TLS or SASL are all
// refused within seconds, with an error that names what was refused and
// never the password.
func TestSecureWrongCredentials(t *testing.T) {
	s := secureSetup(t)
	const wrong = "not-the-password-0123"
	type tc struct {
		name string
		c    kafkaconn.Config
		want string // in the error
	}
	var cases []tc
	for _, mech := range s.mechanisms {
		cases = append(cases, tc{"wrong password " + mech, s.conn(mech, wrong), mech})
		u := s.conn(mech, s.password)
		u.SASL.User = "nobody-" + s.user
		cases = append(cases, tc{"unknown user " + mech, u, mech})
	}
	noCA := s.conn(s.mechanisms[0], s.password)
	noCA.TLS.CAFile = "" // the system's roots do not know the throwaway CA
	cases = append(cases, tc{"untrusted CA", noCA, "certificate"})
	plain := kafkaconn.Config{Brokers: s.seeds}
	cases = append(cases, tc{"no TLS, no SASL", plain, "TLS"})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := secureClient(t, c.c)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			err := kafkaconn.Ping(ctx, c.c, cl)
			took := time.Since(start)
			if err == nil {
				t.Fatal("connected; want a refusal")
			}
			t.Logf("refused in %s: %v", took.Round(time.Millisecond), err)
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				t.Fatalf("hung until the 15s deadline instead of failing fast: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not mention %q: %v", c.want, err)
			}
			for _, pw := range []string{s.password, wrong} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("error shows a password: %v", err)
				}
			}
		})
	}
}

// TestSecureChain: the whole chain (ingress, scheduler, bridges, simulated
// workers) runs over SASL_SSL with SCRAM-SHA-512 and answers every request;
// with a wrong password it does not start, and says why within seconds.
func TestSecureChain(t *testing.T) {
	s := secureSetup(t)
	mech := kafkaconn.MechanismScramSHA512
	if !containsFold(s.mechanisms, mech) {
		mech = s.mechanisms[0]
	}
	start := func(password string) (*cluster.Cluster, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		return cluster.Start(ctx, cluster.Config{
			Brokers:          s.seeds,
			Kafka:            s.conn(mech, password),
			Topics:           topics.Config{Prefix: TopicPrefix(t), Partitions: 2, Replication: -1},
			Workers:          2,
			Sim:              workersim.Config{TimeScale: 0.1},
			ControllerListen: "127.0.0.1:0",
			Logger:           zerolog.Nop(),
		})
	}

	t0 := time.Now()
	_, err := start("not-the-password-0123")
	if err == nil {
		t.Fatal("the chain started with a wrong password")
	}
	t.Logf("wrong password refused in %s: %v", time.Since(t0).Round(time.Millisecond), err)
	if time.Since(t0) > 30*time.Second || !strings.Contains(err.Error(), mech) {
		t.Errorf("want a refusal naming %s within 30s, got after %s: %v", mech, time.Since(t0).Round(time.Millisecond), err)
	}

	cl, err := start(s.password)
	if err != nil {
		t.Fatalf("chain over SASL_SSL %s: %v", mech, err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	client := &http.Client{Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(t, client, cl.ControllerURL(), fmt.Sprintf("matmul-%d", i%4))
		}()
	}
	wg.Wait()
	t.Logf("40 requests answered through the chain over SASL_SSL %s", mech)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
