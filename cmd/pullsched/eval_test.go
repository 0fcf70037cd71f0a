package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/eval"
)

// TestEvalFlags: the eval flags reach eval.Config and each run's cluster
// gets the contender's capacity as is and the scenario's memory.
func TestEvalFlags(t *testing.T) {
	var o evalOptions
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.addFlags(fs)
	for name, def := range map[string]string{"capacity": "0", "memory-mb": "0", "scenarios": "", "seeds": "", "sandbox-mb": "512"} {
		if f := fs.Lookup(name); f == nil || f.DefValue != def {
			t.Errorf("--%s: %+v", name, f)
		}
	}
	err := fs.Parse([]string{"--policies", "pull@unlimited,pull,chbl@8", "--scenarios", "4g,paper", "--seeds", "1,2", "--cores", "2", "--num-workers", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.cfg.Policies, []string{"pull@unlimited", "pull", "chbl@8"}) || !slices.Equal(o.cfg.Scenarios, []string{"4g", "paper"}) ||
		!slices.Equal(o.cfg.Seeds, []int64{1, 2}) {
		t.Errorf("eval config %+v", o.cfg)
	}
	c := &common{partitions: 8}
	for _, capacity := range []int{-1, 0, 8} {
		spec := eval.RunSpec{Policy: "chbl", Capacity: capacity, TimeScale: 0.1, MemoryMB: 4096, Seed: 2}
		cc := o.clusterConfig(spec, c, zerolog.Nop())
		if cc.Policy != "chbl" || cc.WorkerCapacity != capacity || cc.Workers != 3 || cc.Sim.MemoryMB != 4096 || cc.Sim.Cores != 2 ||
			cc.Sim.SandboxMB != 512 || cc.Sim.TimeScale != 0.1 || cc.Topics.Partitions != 8 || cc.PolicyConfig.Seed != 1 ||
			cc.ControllerListen != "127.0.0.1:0" {
			t.Errorf("capacity %d: cluster config %+v", capacity, cc)
		}
	}
}

// TestEvalBadFlags: a bad contender, scenario or seed list fails before any
// cluster starts.
func TestEvalBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--policies", "pull@lots"},
		{"--policies", "nosuch"},
		{"--scenarios", "8g"},
		{"--scenarios", "4g", "--memory-mb", "2048"},
		{"--seeds", "1,1"},
	} {
		_, err := runCmd(t, nil, append([]string{"eval", "--out", "-"}, args...)...)
		if !errors.Is(err, eval.ErrConfig) {
			t.Errorf("%v: %v", args, err)
		}
	}
	// From the environment too.
	if _, err := runCmd(t, map[string]string{"PULLSCHED_SEEDS": "3,3"}, "eval", "--out", "-"); !errors.Is(err, eval.ErrConfig) {
		t.Errorf("PULLSCHED_SEEDS=3,3: %v", err)
	}
	if _, err := runCmd(t, nil, "eval", "--seeds", "1,x"); err == nil {
		t.Error("--seeds 1,x accepted")
	}
}
