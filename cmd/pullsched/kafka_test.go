package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pullsched/pullsched/config"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/kafkaconn/conntest"
)

var kafkaFlags = []string{kafkaconn.FlagClientID, kafkaconn.FlagTLS, kafkaconn.FlagTLSCA, kafkaconn.FlagTLSCert, kafkaconn.FlagTLSKey,
	kafkaconn.FlagTLSServerName, kafkaconn.FlagTLSSkipVerify, kafkaconn.FlagSASLMechanism, kafkaconn.FlagSASLUser,
	kafkaconn.FlagSASLPassword, kafkaconn.FlagSASLPasswordFile}

// TestKafkaFlagsEverywhere: every command with --brokers has the same
// connection flags, and each has its PULLSCHED_* variable.
func TestKafkaFlagsEverywhere(t *testing.T) {
	for _, cmd := range commands {
		fs, _ := newFlagSet(cmd, &common{stdout: io.Discard, stderr: io.Discard})
		if fs.Lookup("brokers") == nil {
			continue
		}
		for _, name := range kafkaFlags {
			if fs.Lookup(name) == nil {
				t.Errorf("%s has --brokers but not --%s", cmd.name, name)
			}
		}
	}
	known := knownEnv()
	for _, name := range kafkaFlags {
		if !slices.Contains(known, config.EnvName(name)) {
			t.Errorf("%s not known", config.EnvName(name))
		}
	}
}

// parseKafka parses args, env and a config file for a command and returns
// the connection they describe.
func parseKafka(t *testing.T, cmdName string, args []string, env map[string]string) kafkaconn.Config {
	t.Helper()
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == cmdName })
	c := &common{stdout: io.Discard, stderr: io.Discard}
	fs, _ := newFlagSet(commands[i], c)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := config.Load(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	return c.kafkaConn()
}

func TestKafkaFlagsEnvFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	yaml := "brokers: [a:9093, b:9093]\nkafka-tls: true\nkafka-tls-ca: /etc/ca.pem\nkafka-sasl-mechanism: SCRAM-SHA-512\nkafka-sasl-user: fromfile\nkafka-sasl-password: filepass\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file alone.
	k := parseKafka(t, "scheduler", []string{"--config", file}, nil)
	if !slices.Equal(k.Brokers, []string{"a:9093", "b:9093"}) || !k.TLS.Enabled || k.TLS.CAFile != "/etc/ca.pem" ||
		k.SASL.Mechanism != "SCRAM-SHA-512" || k.SASL.User != "fromfile" || k.SASL.Password.Reveal() != "filepass" {
		t.Fatalf("from the file: %+v", k)
	}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	// The environment over the file, flags over both.
	env := map[string]string{"PULLSCHED_CONFIG": file, "PULLSCHED_KAFKA_SASL_USER": "fromenv", "PULLSCHED_KAFKA_SASL_PASSWORD": "envpass",
		"PULLSCHED_KAFKA_TLS_SERVER_NAME": "kafka.internal", "PULLSCHED_KAFKA_CLIENT_ID": "app-1"}
	k = parseKafka(t, "controller", []string{"--kafka-sasl-user", "fromflag"}, env)
	if k.SASL.User != "fromflag" || k.SASL.Password.Reveal() != "envpass" || k.TLS.ServerName != "kafka.internal" || k.ClientID != "app-1" || k.TLS.CAFile != "/etc/ca.pem" {
		t.Fatalf("precedence: %+v", k)
	}
	// A bad boolean in the environment is an error naming the variable.
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == "invoker" })
	c := &common{stdout: io.Discard, stderr: io.Discard}
	fs, _ := newFlagSet(commands[i], c)
	_ = fs.Parse(nil)
	err := config.Load(fs, func(k string) string {
		if k == "PULLSCHED_KAFKA_TLS" {
			return "maybe"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "PULLSCHED_KAFKA_TLS") {
		t.Fatalf("bad PULLSCHED_KAFKA_TLS: %v", err)
	}
}

// TestTopicsCreateSecured runs `pullsched topics create` against a broker
// requiring TLS and SASL, configured only through PULLSCHED_* variables:
// the right password creates the topics, a wrong one fails naming the
// mechanism, and neither output shows a password.
func TestTopicsCreateSecured(t *testing.T) {
	pki := conntest.NewPKI(t)
	const pw = "cmd-test-password"
	b := conntest.Broker(t, pki, []conntest.User{{Mechanism: kafkaconn.MechanismScramSHA256, Name: "ops", Password: pw}})
	env := map[string]string{
		"PULLSCHED_BROKERS": strings.Join(b.ListenAddrs(), ","), "PULLSCHED_KAFKA_TLS": "true", "PULLSCHED_KAFKA_TLS_CA": pki.CAFile,
		"PULLSCHED_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "PULLSCHED_KAFKA_SASL_USER": "ops",
		"PULLSCHED_KAFKA_SASL_PASSWORD_FILE": conntest.WriteFile(t, "pw", pw+"\n"),
		"PULLSCHED_TOPIC_PREFIX":             "sec.", "PULLSCHED_REPLICATION": "1",
	}
	out, err := runCmd(t, env, "topics", "create")
	if err != nil || !strings.Contains(out, "created sec.arrivals") {
		t.Fatalf("create: %v\n%s", err, out)
	}
	delete(env, "PULLSCHED_KAFKA_SASL_PASSWORD_FILE")
	env["PULLSCHED_KAFKA_SASL_PASSWORD"] = "wrong-" + pw
	out, err = runCmd(t, env, "topics", "describe", "--log-level", "debug")
	if err == nil || !strings.Contains(err.Error(), "SASL SCRAM-SHA-256") || !strings.Contains(err.Error(), `"ops"`) {
		t.Fatalf("describe with a wrong password: %v\n%s", err, out)
	}
	if strings.Contains(out+err.Error(), pw) {
		t.Fatalf("output shows the password: %v\n%s", err, out)
	}
}

// TestEmbeddedBrokerRefusesSecurity: the embedded broker serves plaintext,
// so broker and dev without --brokers reject TLS and SASL settings, as does
// the bench rig, whose clients have none.
func TestEmbeddedBrokerRefusesSecurity(t *testing.T) {
	env := map[string]string{"PULLSCHED_KAFKA_TLS": "true"}
	if _, err := runCmd(t, env, "broker", "--brokers", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("broker: %v", err)
	}
	if _, err := runCmd(t, env, "dev"); err == nil || !strings.Contains(err.Error(), "need --brokers") {
		t.Fatalf("dev: %v", err)
	}
	if _, err := runCmd(t, env, "bench", "scheduler"); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("bench: %v", err)
	}
}
