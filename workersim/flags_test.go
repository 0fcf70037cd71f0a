package workersim

import (
	"flag"
	"io"
	"testing"
	"time"
)

func TestAddFlags(t *testing.T) {
	var cfg Config
	fs := flag.NewFlagSet("workersim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.AddFlags(fs)
	if f := fs.Lookup("memory-mb"); f == nil || f.DefValue != "16384" {
		t.Fatalf("memory-mb flag %+v", f)
	}
	err := fs.Parse([]string{"--time-scale", "0.1", "--cores", "8", "--memory-mb", "4096", "--sandbox-mb", "256",
		"--keep-alive", "10m", "--notify-url", "http://127.0.0.1:9/", "--jitter", "-1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TimeScale != 0.1 || cfg.Cores != 8 || cfg.MemoryMB != 4096 || cfg.SandboxMB != 256 ||
		cfg.KeepAlive != 10*time.Minute || cfg.NotifyURL != "http://127.0.0.1:9/" || cfg.FreeGoal != 0.2 {
		t.Errorf("parsed %+v", cfg)
	}
	s := newSim(t, cfg)
	if s.total != 16 || s.cfg.Jitter != 0 {
		t.Errorf("slots %d jitter %v", s.total, s.cfg.Jitter)
	}
}
