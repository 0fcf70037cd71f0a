package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/pullsched/pullsched/scheduler"
)

func setupBench(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	var cfg scheduler.BenchConfig
	embedded := fs.Bool("embedded", false, "ignore --brokers and run on an embedded broker")
	fs.IntVar(&cfg.Workers, "workers", 8, "no-op workers answering assignments with completions")
	fs.IntVar(&cfg.Functions, "functions", 100, "distinct functions the arrivals cycle through")
	fs.Float64Var(&cfg.Rate, "rate", 0, "arrivals per second (0: as fast as the window allows)")
	fs.IntVar(&cfg.Window, "window", 4096, "arrivals in flight at most when --rate is 0")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long arrivals are driven")
	fs.StringVar(&cfg.Policy, "policy", "pull", "the scheduler's policy")
	fs.DurationVar(&cfg.Linger, "linger", 0, "the scheduler's producer linger")
	fs.DurationVar(&cfg.DriverLinger, "driver-linger", 0, "linger of the load driver's and no-op bridges' producers (0: the bench default, 2ms; negative: none)")
	return func(ctx context.Context) error {
		if len(c.args) != 1 || c.args[0] != "scheduler" {
			return fmt.Errorf("usage: pullsched bench scheduler [--brokers host:port | --embedded] [flags]")
		}
		if !*embedded {
			if k := c.kafkaConn(); k.TLS.Enabled || k.SASL.Mechanism != "" {
				return fmt.Errorf("bench: the benchmark rig speaks plaintext without SASL only; drop the --kafka-tls* and --kafka-sasl-* settings")
			}
			cfg.Brokers = c.brokers.Values
		}
		cfg.Partitions = int32(c.partitions)
		cfg.Logger = c.log
		res, err := scheduler.Bench(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, res.String())
		return nil
	}
}
