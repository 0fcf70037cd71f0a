package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/pullsched/pullsched/loadgen"
)

func setupLoadgen(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	cfg := loadgen.Config{Target: "http://127.0.0.1:9020"}
	cfg.AddFlags(fs)
	jsonOut := fs.String("json", "", "write the raw summary as JSON to this file ('-' for stdout)")
	return func(ctx context.Context) error {
		cfg.Progress = os.Stderr
		rep, err := loadgen.Run(ctx, cfg)
		if err != nil {
			return err
		}
		if *jsonOut == "-" {
			return json.NewEncoder(c.stdout).Encode(rep)
		}
		fmt.Fprintln(c.stdout, rep.String())
		if *jsonOut != "" {
			b, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				return err
			}
			return os.WriteFile(*jsonOut, b, 0o644)
		}
		return nil
	}
}
