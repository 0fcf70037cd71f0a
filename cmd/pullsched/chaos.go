package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/pullsched/pullsched/chaos"
)

func setupChaos(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	var cfg chaos.Config
	fs.StringVar(&cfg.Bin, "bin", "", "pullsched binary to run the parts with (default: go build it once into --work-dir)")
	fs.BoolVar(&cfg.Short, "short", false, "the CI form: each scenario a few seconds (default: the long form)")
	fs.StringVar(&cfg.Scenarios, "scenarios", "", "comma-separated scenario names to run (default: all of the form)")
	fs.Float64Var(&cfg.Rate, "rate", 100, "offered open-loop load in requests per second")
	fs.IntVar(&cfg.Functions, "functions", 16, "functions the load spreads over")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "?timeout= of every request (default 5s short, 20s long)")
	fs.DurationVar(&cfg.Slack, "slack", 0, "unanswered this long past its deadline is a hang (default 10s, beyond the controller's 5s result margin)")
	fs.DurationVar(&cfg.Late, "late", 0, "an answer more than this past its deadline is late, a failed assertion (default 1s)")
	fs.DurationVar(&cfg.Slow, "slow", 0, "a 200 slower than this (from its intended send) is not recovered (default 1s)")
	fs.Float64Var(&cfg.DupBudget, "dup-budget", 0.001, "allowed share of duplicate executions among accepted requests")
	fs.Float64Var(&cfg.TimeScale, "time-scale", 0.1, "the workersims' --time-scale")
	fs.StringVar(&cfg.BrokerStopCmd, "broker-stop-cmd", "", "shell command that stops the broker (with --broker-start-cmd: run the broker-restart scenario)")
	fs.StringVar(&cfg.BrokerStartCmd, "broker-start-cmd", "", "shell command that starts the broker again and returns once it answers")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "directory for the parts' logs (default: a new temporary directory, kept)")
	fs.BoolVar(&cfg.KeepTopics, "keep-topics", false, "leave the run's topics (chaos-<run>.*) on the broker")
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	mdOut := fs.String("markdown", "", "write the report's markdown table to this file as well")
	return func(ctx context.Context) error {
		cfg.Brokers = c.brokers.Values
		cfg.Partitions = c.partitions
		cfg.Progress = c.stderr
		rep, err := chaos.Run(ctx, cfg)
		if rep == nil {
			return err
		}
		if werr := rep.Markdown(c.stdout); werr != nil {
			return werr
		}
		for path, write := range map[string]func(*os.File) error{
			*jsonOut: func(f *os.File) error { return rep.JSON(f) },
			*mdOut:   func(f *os.File) error { return rep.Markdown(f) },
		} {
			if path == "" {
				continue
			}
			f, ferr := os.Create(path)
			if ferr != nil {
				return ferr
			}
			werr := write(f)
			if cerr := f.Close(); werr == nil {
				werr = cerr
			}
			if werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
		if !rep.Pass {
			return errors.New("chaos: assertions failed (see the table)")
		}
		fmt.Fprintln(c.stderr, "chaos: all assertions hold")
		return nil
	}
}
