package kafkaconn_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/kafkaconn/conntest"
)

const pw = "hunter2-s3cret"

func TestValidate(t *testing.T) {
	b := []string{"b:9092"}
	for _, tc := range []struct {
		name string
		cfg  kafkaconn.Config
		want string // "" for valid
	}{
		{"plain", kafkaconn.Config{Brokers: b}, ""},
		{"no brokers", kafkaconn.Config{}, "no seed brokers"},
		{"tls", kafkaconn.Config{Brokers: b, TLS: kafkaconn.TLS{Enabled: true, CAFile: "ca.pem", ServerName: "x"}}, ""},
		{"tls settings without tls", kafkaconn.Config{Brokers: b, TLS: kafkaconn.TLS{CAFile: "ca.pem"}}, "TLS is off"},
		{"skip verify without tls", kafkaconn.Config{Brokers: b, TLS: kafkaconn.TLS{InsecureSkipVerify: true}}, "skip-verify"},
		{"cert without key", kafkaconn.Config{Brokers: b, TLS: kafkaconn.TLS{Enabled: true, CertFile: "c.pem"}}, "both or neither"},
		{"scram", kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{Mechanism: "scram-sha-512", User: "u", Password: "p"}}, ""},
		{"password file", kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{Mechanism: "PLAIN", User: "u", PasswordFile: "/f"}}, ""},
		{"unknown mechanism", kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{Mechanism: "GSSAPI", User: "u", Password: "p"}}, `unknown SASL mechanism "GSSAPI"`},
		{"no user", kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{Mechanism: "PLAIN", Password: "p"}}, "PLAIN needs a user"},
		{"no password", kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-256", User: "u"}}, "SCRAM-SHA-256 needs a password"},
		{"both passwords", kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{Mechanism: "PLAIN", User: "u", Password: "p", PasswordFile: "/f"}}, "both given"},
		{"user without mechanism", kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{User: "u"}}, "without a mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if tc.name != "no brokers" && !errors.Is(err, kafkaconn.ErrConfig) {
				t.Fatalf("Validate = %v, does not wrap ErrConfig", err)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	var c kafkaconn.Config
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.AddFlags(fs)
	err := fs.Parse([]string{"--kafka-tls", "--kafka-tls-ca", "/ca.pem", "--kafka-tls-server-name", "kafka.internal",
		"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", "app", "--kafka-sasl-password", pw, "--kafka-client-id", "cid"})
	if err != nil {
		t.Fatal(err)
	}
	want := kafkaconn.Config{ClientID: "cid",
		TLS:  kafkaconn.TLS{Enabled: true, CAFile: "/ca.pem", ServerName: "kafka.internal"},
		SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-512", User: "app", Password: pw}}
	if fmt.Sprint(c.TLS, c.SASL, c.ClientID) != fmt.Sprint(want.TLS, want.SASL, want.ClientID) || c.SASL.Password.Reveal() != pw {
		t.Fatalf("parsed %+v, want %+v", c, want)
	}
	// The flag set itself never shows the password.
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Value.String(), pw) {
			t.Errorf("flag %s shows the password: %q", f.Name, f.Value.String())
		}
	})
}

func TestSecretNeverPrinted(t *testing.T) {
	c := kafkaconn.Config{Brokers: []string{"b:9093"}, TLS: kafkaconn.TLS{Enabled: true},
		SASL: kafkaconn.SASL{Mechanism: "PLAIN", User: "app", Password: pw}}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	zl := zerolog.New(&logged)
	zl.Info().Object("kafka", c).Interface("cfg", c).Any("sasl", c.SASL).Msg("x")
	outs := map[string]string{
		"json": string(js), "log": logged.String(),
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"sasl %+v": fmt.Sprintf("%+v", c.SASL), "sasl %#v": fmt.Sprintf("%#v", c.SASL),
		"secret %s": fmt.Sprintf("%s", c.SASL.Password), "secret %q": fmt.Sprintf("%q", c.SASL.Password),
		"secret %x": fmt.Sprintf("%x", c.SASL.Password), "secret %d": fmt.Sprintf("%d", c.SASL.Password),
		"describe": c.Describe(),
	}
	for name, out := range outs {
		if strings.Contains(out, pw) || strings.Contains(out, fmt.Sprintf("%x", pw)) {
			t.Errorf("%s shows the password: %s", name, out)
		}
	}
	if !strings.Contains(string(js), `"password":"[redacted]"`) {
		t.Errorf("json = %s, want the password redacted", js)
	}
	if !strings.Contains(logged.String(), `"sasl_mechanism":"PLAIN"`) || !strings.Contains(logged.String(), `"sasl_user":"app"`) {
		t.Errorf("log = %s, want mechanism and user", logged.String())
	}
	if got := c.Describe(); got != `SASL PLAIN as "app" over TLS to b:9093` {
		t.Errorf("Describe = %q", got)
	}
}

func TestLogSecurity(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  kafkaconn.Config
		want string
	}{
		{"skip verify", kafkaconn.Config{Brokers: []string{"b"}, TLS: kafkaconn.TLS{Enabled: true, InsecureSkipVerify: true}}, "INSECURE"},
		{"plain in clear", kafkaconn.Config{Brokers: []string{"b"}, SASL: kafkaconn.SASL{Mechanism: "plain", User: "u", Password: "p"}}, "clear text"},
		{"verified tls", kafkaconn.Config{Brokers: []string{"b"}, TLS: kafkaconn.TLS{Enabled: true}, SASL: kafkaconn.SASL{Mechanism: "PLAIN", User: "u", Password: "p"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.cfg.LogSecurity(zerolog.New(&buf))
			lines := strings.Count(buf.String(), "\n")
			switch {
			case tc.want == "" && lines != 0:
				t.Fatalf("logged %s, want nothing", buf.String())
			case tc.want != "" && (lines != 1 || !strings.Contains(buf.String(), tc.want) || !strings.Contains(buf.String(), `"level":"warn"`)):
				t.Fatalf("logged %s, want one warning with %q", buf.String(), tc.want)
			}
		})
	}
}

func TestClientOptsFiles(t *testing.T) {
	b := []string{"127.0.0.1:1"}
	if _, err := (kafkaconn.Config{Brokers: b, TLS: kafkaconn.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}}).ClientOpts(); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Fatalf("missing CA file: %v", err)
	}
	notPEM := conntest.WriteFile(t, "ca.pem", "not a certificate")
	if _, err := (kafkaconn.Config{Brokers: b, TLS: kafkaconn.TLS{Enabled: true, CAFile: notPEM}}).ClientOpts(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad CA file: %v", err)
	}
	empty := conntest.WriteFile(t, "pw", "\n")
	if _, err := (kafkaconn.Config{Brokers: b, SASL: kafkaconn.SASL{Mechanism: "PLAIN", User: "u", PasswordFile: empty}}).ClientOpts(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty password file: %v", err)
	}
}

// roundTrip produces one record and reads it back with clients built from c.
func roundTrip(ctx context.Context, c kafkaconn.Config, topic string) error {
	opts, err := c.ClientOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	for {
		f := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.Err0(); err != nil {
			return err
		}
		for _, r := range f.Records() {
			if string(r.Value) == "hello" {
				return nil
			}
		}
	}
}

// ping is the connection check a part makes first.
func ping(ctx context.Context, c kafkaconn.Config) error {
	opts, err := c.ClientOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return kafkaconn.Ping(ctx, c, cl)
}

func TestBrokerSecurity(t *testing.T) {
	pki := conntest.NewPKI(t)
	users := []conntest.User{
		{Mechanism: kafkaconn.MechanismPlain, Name: "plainuser", Password: pw},
		{Mechanism: kafkaconn.MechanismScramSHA256, Name: "scram256", Password: pw},
		{Mechanism: kafkaconn.MechanismScramSHA512, Name: "scram512", Password: pw},
	}
	saslTLS := conntest.Broker(t, pki, users, kfake.AllowAutoTopicCreation())
	plainTLS := conntest.Broker(t, pki, nil, kfake.AllowAutoTopicCreation())
	sasl := conntest.Broker(t, nil, users, kfake.AllowAutoTopicCreation())
	otherCA := conntest.NewPKI(t)
	pwFile := conntest.WriteFile(t, "pw", pw+"\n")

	tlsOn := kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile}
	for _, tc := range []struct {
		name    string
		cfg     kafkaconn.Config
		wantErr []string // nil: the round trip works
	}{
		{"plain over tls", kafkaconn.Config{Brokers: saslTLS.ListenAddrs(), TLS: tlsOn,
			SASL: kafkaconn.SASL{Mechanism: "PLAIN", User: "plainuser", Password: pw}}, nil},
		{"scram-256 over tls", kafkaconn.Config{Brokers: saslTLS.ListenAddrs(), TLS: tlsOn,
			SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-256", User: "scram256", PasswordFile: pwFile}}, nil},
		{"scram-512 over tls", kafkaconn.Config{Brokers: saslTLS.ListenAddrs(), TLS: tlsOn,
			SASL: kafkaconn.SASL{Mechanism: "scram-sha-512", User: "scram512", Password: pw}}, nil},
		{"scram-256 plaintext", kafkaconn.Config{Brokers: sasl.ListenAddrs(),
			SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-256", User: "scram256", Password: pw}}, nil},
		{"tls only", kafkaconn.Config{Brokers: plainTLS.ListenAddrs(), TLS: tlsOn}, nil},
		{"tls server name", kafkaconn.Config{Brokers: plainTLS.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile, ServerName: "localhost"}}, nil},
		{"tls skip verify", kafkaconn.Config{Brokers: plainTLS.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, InsecureSkipVerify: true}}, nil},

		{"wrong plain password", kafkaconn.Config{Brokers: saslTLS.ListenAddrs(), TLS: tlsOn,
			SASL: kafkaconn.SASL{Mechanism: "PLAIN", User: "plainuser", Password: "wrong"}}, []string{"SASL PLAIN", `"plainuser"`, "login refused"}},
		{"wrong scram-256 password", kafkaconn.Config{Brokers: sasl.ListenAddrs(),
			SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-256", User: "scram256", Password: "wrong"}}, []string{"SASL SCRAM-SHA-256", `"scram256"`, "login refused"}},
		{"wrong scram-512 user", kafkaconn.Config{Brokers: sasl.ListenAddrs(),
			SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-512", User: "nobody", Password: pw}}, []string{"SASL SCRAM-SHA-512", `"nobody"`}},
		{"scram user with the wrong mechanism", kafkaconn.Config{Brokers: sasl.ListenAddrs(),
			SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-512", User: "scram256", Password: pw}}, []string{"SASL SCRAM-SHA-512"}},
		{"no sasl against sasl broker", kafkaconn.Config{Brokers: sasl.ListenAddrs()}, []string{"no SASL"}},
		{"plaintext to a tls listener", kafkaconn.Config{Brokers: plainTLS.ListenAddrs()}, []string{"plaintext", "--kafka-tls"}},
		{"untrusted CA", kafkaconn.Config{Brokers: plainTLS.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: otherCA.CAFile}},
			[]string{"over TLS", "trusted CA"}},
		{"wrong server name", kafkaconn.Config{Brokers: plainTLS.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile, ServerName: "kafka.example"}},
			[]string{"over TLS", "kafka.example", "--kafka-tls-server-name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A generous bound: a failure must come from the broker's answer,
			// well before it; the test asserts the error, not the time.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := ping(ctx, tc.cfg)
			if err == nil {
				err = roundTrip(ctx, tc.cfg, "t-"+strings.ReplaceAll(tc.name, " ", "-"))
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("round trip: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("connected with bad settings")
			}
			if ctx.Err() != nil {
				t.Fatalf("gave up only at the deadline: %v", err)
			}
			t.Logf("error: %v", err)
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("error shows the password: %v", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	pki := conntest.NewPKI(t)
	pki.RequireClientCert()
	b := conntest.Broker(t, pki, nil, kfake.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	with := kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}}
	if err := roundTrip(ctx, with, "mtls"); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	without := kafkaconn.Config{Brokers: b.ListenAddrs(), TLS: kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile}}
	if err := ping(ctx, without); err == nil || ctx.Err() != nil {
		t.Fatalf("without a client certificate: %v (ctx %v)", err, ctx.Err())
	}
}

// TestExplain covers the answers of a real Kafka that the embedded broker
// does not give (it hangs up instead of answering SaslAuthenticate with an
// error, and keeps reading a TLS hello sent to a plaintext listener).
func TestExplain(t *testing.T) {
	sasl := kafkaconn.Config{Brokers: []string{"b:9096"}, TLS: kafkaconn.TLS{Enabled: true},
		SASL: kafkaconn.SASL{Mechanism: "SCRAM-SHA-512", User: "app", Password: pw}}
	plain := kafkaconn.Config{Brokers: []string{"b:9092"}}
	for _, tc := range []struct {
		name string
		cfg  kafkaconn.Config
		err  error
		want string
	}{
		{"refused", sasl, fmt.Errorf("wrapped: %w", kerr.SaslAuthenticationFailed), "SASL SCRAM-SHA-512 login refused"},
		{"mechanism not offered", sasl, kerr.UnsupportedSaslMechanism, "do not offer SASL SCRAM-SHA-512"},
		{"tls to a plaintext listener", sasl, &kgo.ErrFirstReadEOF{}, "is its listener plaintext"},
		{"not tls", sasl, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "did not answer in TLS"},
		{"untrusted", sasl, x509.UnknownAuthorityError{}, "--kafka-tls-ca"},
		{"other", plain, errors.New("dial tcp: connection refused"), "kafka (no SASL, over plaintext to b:9092): dial tcp: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := kafkaconn.Explain(tc.cfg, tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("Explain does not wrap %v", tc.err)
			}
			if !strings.Contains(got.Error(), tc.want) || strings.Contains(got.Error(), pw) {
				t.Errorf("Explain = %q, want it to say %q and not the password", got, tc.want)
			}
		})
	}
	if kafkaconn.Explain(plain, nil) != nil {
		t.Error("Explain(nil) is not nil")
	}
}
