package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pullsched/pullsched/broker"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, &out, &errOut, func(k string) string { return env[k] })
	return out.String() + errOut.String(), err
}

func TestUsageAndUnknownCommand(t *testing.T) {
	out, err := runCmd(t, nil)
	if err != nil || !strings.Contains(out, "scheduler") || !strings.Contains(out, "PULLSCHED_") {
		t.Fatalf("usage: %v\n%s", err, out)
	}
	if _, err := runCmd(t, nil, "bogus"); err == nil || !strings.Contains(err.Error(), `unknown command "bogus"`) {
		t.Fatalf("unknown command: %v", err)
	}
	if _, err := runCmd(t, nil, "scheduler", "--no-such-flag"); err == nil {
		t.Fatal("unknown flag accepted")
	}
	if _, err := runCmd(t, nil, "topics", "frobnicate"); err == nil || !strings.Contains(err.Error(), "create|describe") {
		t.Fatalf("topics usage: %v", err)
	}
	if _, err := runCmd(t, nil, "scheduler", "--log-level", "loud"); err == nil {
		t.Fatal("bad log level accepted")
	}
}

// TestTopicsCreateTwice: flags after the positional word, the environment
// and a config file all reach the command; creating twice is fine.
func TestTopicsCreateTwice(t *testing.T) {
	b, err := broker.Start(broker.Config{Ports: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfgFile := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(cfgFile, []byte("topic-prefix: fromfile.\npartitions: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PULLSCHED_BROKERS": b.Addrs()[0], "PULLSCHED_CONFIG": cfgFile}
	out, err := runCmd(t, env, "topics", "create")
	if err != nil || !strings.Contains(out, "created fromfile.arrivals") {
		t.Fatalf("create: %v\n%s", err, out)
	}
	out, err = runCmd(t, env, "topics", "create")
	if err != nil || !strings.Contains(out, "already exist") {
		t.Fatalf("second create: %v\n%s", err, out)
	}
	out, err = runCmd(t, nil, "topics", "describe", "--brokers", b.Addrs()[0], "--topic-prefix", "fromfile.")
	if err != nil || !strings.Contains(out, "fromfile.worker-events  3") || !strings.Contains(out, "cleanup.policy=compact") {
		t.Fatalf("describe: %v\n%s", err, out)
	}
}

func TestKnownEnv(t *testing.T) {
	known := knownEnv()
	for _, k := range []string{"PULLSCHED_BROKERS", "PULLSCHED_TOPIC_PREFIX", "PULLSCHED_ADMIN_TOKEN", "PULLSCHED_POLICY", "PULLSCHED_WORKER_URL", "PULLSCHED_TIME_SCALE"} {
		if !slices.Contains(known, k) {
			t.Errorf("%s not known", k)
		}
	}
}
