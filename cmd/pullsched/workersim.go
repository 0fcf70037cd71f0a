package main

import (
	"context"
	"flag"

	"github.com/pullsched/pullsched/workersim"
)

func setupWorkersim(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:8081")
	var cfg workersim.Config
	cfg.AddFlags(fs)
	return func(ctx context.Context) error {
		cfg.Logger = c.log
		sim, err := workersim.New(cfg)
		if err != nil {
			return err
		}
		c.log.Info().Str("listen", c.listen).Msg("simulated OpenLambda worker")
		return sim.Run(ctx, c.listen)
	}
}
