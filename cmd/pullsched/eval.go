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

func setupEval(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	var cfg eval.Config
	cfg.AddFlags(fs)
	workers := fs.Int("num-workers", 5, "simulated workers per cluster (the paper's five m5.xlarge)")
	cores := fs.Int("cores", 4, "simulated CPUs per worker")
	memory := fs.Int("memory-mb", 16384, "sandbox memory per worker in MB")
	sandbox := fs.Int("sandbox-mb", 512, "memory per sandbox in MB")
	capacity := fs.Int("capacity", 128, "concurrent calls per bridge, also the in-flight limit it advertises (at least the VU count keeps Hiku's unlimited placement)")
	seed := fs.Int64("policy-seed", 1, "seed of the policies' random choices")
	return func(ctx context.Context) error {
		cfg.Progress = os.Stderr
		cfg.Output = c.stdout
		// The parts' own logs would drown the progress display: only
		// warnings and errors.
		partLog := c.log.Level(max(zerolog.WarnLevel, c.log.GetLevel()))
		start := func(ctx context.Context, pol string, timeScale float64) (string, func() error, error) {
			sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			cl, err := cluster.Start(sctx, cluster.Config{
				Topics:           topics.Config{Partitions: int32(c.partitions)},
				Policy:           pol,
				PolicyConfig:     policy.Config{Seed: *seed},
				Workers:          *workers,
				WorkerCapacity:   *capacity,
				Sim:              workersim.Config{Cores: *cores, MemoryMB: *memory, SandboxMB: *sandbox, TimeScale: timeScale},
				ControllerListen: "127.0.0.1:0",
				Logger:           partLog,
			})
			if err != nil {
				return "", nil, err
			}
			return cl.ControllerURL(), cl.Stop, nil
		}
		_, err := eval.Run(ctx, cfg, start)
		return err
	}
}
