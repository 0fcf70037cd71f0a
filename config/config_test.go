package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newFS() (*flag.FlagSet, *string, *List, *string, *int) {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	fs.String(ConfigFlag, "", "")
	listen := fs.String("listen", "127.0.0.1:9020", "")
	workers := NewList("http://default:1")
	fs.Var(workers, "workers", "")
	policy := fs.String("policy", "pull", "")
	parts := fs.Int("partitions", 8, "")
	return fs, listen, workers, policy, parts
}

func write(t *testing.T, name, body string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	file := write(t, "c.yaml", "listen: 0.0.0.0:1\npolicy: chbl\npartitions: 4\nworkers: [http://a:1, http://b:2]\n")
	fs, listen, workers, policy, parts := newFS()
	if err := fs.Parse([]string{"--config", file, "--policy", "random"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PULLSCHED_PARTITIONS": "6"}
	if err := Load(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *policy != "random" || *parts != 6 || *listen != "0.0.0.0:1" || strings.Join(workers.Values, " ") != "http://a:1 http://b:2" {
		t.Fatalf("policy %s partitions %d listen %s workers %v", *policy, *parts, *listen, *workers)
	}
}

func TestHikuJSON(t *testing.T) {
	file := write(t, "hiku.json", `{"host": "0.0.0.0", "port": 9020, "balancer": "pull-based", "workers": ["http://127.0.0.1:8081"]}`)
	fs, listen, workers, policy, _ := newFS()
	_ = fs.Parse(nil)
	env := map[string]string{"PULLSCHED_CONFIG": file}
	if err := Load(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *listen != "0.0.0.0:9020" || *policy != "pull-based" || len(workers.Values) != 1 {
		t.Fatalf("listen %s policy %s workers %v", *listen, *policy, *workers)
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"c.yaml", "nope: 1\n", `unknown setting "nope"`},
		{"c.yaml", "partitions: many\n", "partitions"},
		{"c.json", `{"listen": `, "c.json"},
		{"c.yaml", "listen: {a: b}\n", "nested"},
	}
	for _, c := range cases {
		fs, _, _, _, _ := newFS()
		_ = fs.Parse([]string{"--config", write(t, c.name, c.body)})
		err := Load(fs, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want it to mention %q", c.body, err, c.want)
		}
	}
	fs, _, _, _, _ := newFS()
	_ = fs.Parse(nil)
	if err := Load(fs, func(k string) string { return map[string]string{"PULLSCHED_PARTITIONS": "x"}[k] }); err == nil || !strings.Contains(err.Error(), "PULLSCHED_PARTITIONS") {
		t.Errorf("bad env value: %v", err)
	}
}
