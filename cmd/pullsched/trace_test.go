package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/pullsched/pullsched/tracing"
)

// TestComposeTracingExample uncomments the compose file's tracing example
// and checks that the file still passes the compose check and that every
// Kafka part of it would trace.
func TestComposeTracingExample(t *testing.T) {
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	example := regexp.MustCompile(`(?m)^(\s*)# ((?:PULLSCHED_TRACE|OTEL_[A-Z_]+): .*)$`)
	n := len(example.FindAll(b, -1))
	if n < 2 {
		t.Fatalf("%d tracing settings commented in %s, want the example (PULLSCHED_TRACE, OTEL_*)", n, composeFile)
	}
	on := example.ReplaceAll(b, []byte("$1$2"))
	dir := t.TempDir()
	path := filepath.Join(dir, filepath.Base(composeFile))
	if err := os.WriteFile(path, on, 0o644); err != nil {
		t.Fatal(err)
	}
	// The build context (.) must exist beside the file for the loader.
	if df, err := os.ReadFile(filepath.Join(filepath.Dir(composeFile), "Dockerfile")); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "Dockerfile"), df, 0o644)
	}
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithName("pullsched"), cli.WithWorkingDirectory(dir), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("the uncommented example does not load: %v", err)
	}
	for _, err := range checkCompose(p) {
		t.Error(err)
	}
	ps, _ := parts(p)
	traced := 0
	for _, pt := range ps {
		if !pt.usesKafka() {
			continue
		}
		on, err := tracing.Wanted(tracing.Config{Flag: pt.settings["trace"] == "true", Getenv: func(k string) string { return pt.env[k] }})
		if err != nil || !on {
			t.Errorf("%s: tracing on = %v, %v with the example uncommented", pt.name, on, err)
		}
		traced++
	}
	if traced == 0 {
		t.Fatal("no Kafka part in the compose file")
	}
}

// TestTraceFlag: every part takes --trace; a bad OTEL_* setting fails the
// start with an error naming it, before the part runs.
func TestTraceFlag(t *testing.T) {
	for _, cmd := range []string{"scheduler", "invoker", "controller", "dev"} {
		var stderr bytes.Buffer
		env := map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
		err := run(context.Background(), []string{cmd, "--trace"}, &bytes.Buffer{}, &stderr, func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), "grpc") {
			t.Errorf("%s --trace with OTLP over gRPC: err %v, want one naming grpc", cmd, err)
		}
	}
}
