package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/cluster"
	"github.com/pullsched/pullsched/eval"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// evalOptions are the eval command's settings: the evaluation's own and
// the shape of every cluster it starts.
type evalOptions struct {
	cfg        eval.Config
	workers    int
	cores      int
	sandboxMB  int
	policySeed int64
}

func (o *evalOptions) addFlags(fs *flag.FlagSet) {
	o.cfg.AddFlags(fs)
	fs.IntVar(&o.workers, "num-workers", 5, "simulated workers per cluster (the paper's five m5.xlarge)")
	fs.IntVar(&o.cores, "cores", 4, "simulated CPUs per worker")
	fs.IntVar(&o.sandboxMB, "sandbox-mb", 512, "memory per sandbox in MB")
	fs.Int64Var(&o.policySeed, "policy-seed", 1, "seed of the policies' random choices")
}

// clusterConfig is the cluster one run of spec starts: the contender's
// capacity passed through as the bridges' (-1 unlimited, 0 their default,
// N), the scenario's memory per worker.
func (o *evalOptions) clusterConfig(spec eval.RunSpec, c *common, log zerolog.Logger) cluster.Config {
	return cluster.Config{
		Topics:           topics.Config{Partitions: int32(c.partitions)},
		Policy:           spec.Policy,
		PolicyConfig:     policy.Config{Seed: o.policySeed},
		Workers:          o.workers,
		WorkerCapacity:   spec.Capacity,
		Sim:              workersim.Config{Cores: o.cores, MemoryMB: spec.MemoryMB, SandboxMB: o.sandboxMB, TimeScale: spec.TimeScale},
		ControllerListen: "127.0.0.1:0",
		Logger:           log,
	}
}

func setupEval(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	var o evalOptions
	o.addFlags(fs)
	ow := fs.Bool("openwhisk", false, "run the workload through the OpenWhisk mode (simulated OpenWhisk controller and invokers, docs/OPENWHISK.md); without --policies: pull against ow-hash")
	return func(ctx context.Context) error {
		o.cfg.Progress = os.Stderr
		o.cfg.Output = c.stdout
		// The parts' own logs would drown the progress display: only
		// warnings and errors.
		partLog := c.log.Level(max(zerolog.WarnLevel, c.log.GetLevel()))
		start := func(ctx context.Context, spec eval.RunSpec) (string, func() error, error) {
			sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			cl, err := cluster.Start(sctx, o.clusterConfig(spec, c, partLog))
			if err != nil {
				return "", nil, err
			}
			return cl.ControllerURL(), cl.Stop, nil
		}
		if *ow {
			if !flagWasSet(fs, "policies") {
				o.cfg.Policies = eval.OpenWhiskPolicies()
			}
			start = openwhiskStarter(&o, partLog)
		}
		_, err := eval.Run(ctx, o.cfg, start)
		return err
	}
}
