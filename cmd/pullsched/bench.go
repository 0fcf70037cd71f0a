package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pullsched/pullsched/benchchain"
	"github.com/pullsched/pullsched/config"
	"github.com/pullsched/pullsched/schedbench"
)

const benchUsage = "usage: pullsched bench scheduler|chain [--brokers host:port | --embedded] [flags]"

func setupBench(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	var cfg schedbench.Config
	embedded := fs.Bool("embedded", false, "ignore --brokers and run on an embedded broker (chain: the default unless --brokers is given)")
	fs.IntVar(&cfg.Workers, "workers", 8, "no-op workers (scheduler: answering assignments with completions; chain: HTTP workers behind the chain, default 5)")
	fs.IntVar(&cfg.Functions, "functions", 100, "distinct functions the arrivals cycle through (chain: default 40)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "scheduler: arrivals per second (0: as fast as the window allows)")
	fs.IntVar(&cfg.Window, "window", 4096, "scheduler: arrivals in flight at most when --rate is 0")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long arrivals are driven (chain: per rate and target, default 15s)")
	fs.StringVar(&cfg.Policy, "policy", "pull", "scheduler: the scheduler's policy")
	fs.DurationVar(&cfg.Linger, "linger", 0, "scheduler: the scheduler's producer linger")
	fs.DurationVar(&cfg.DriverLinger, "driver-linger", 0, "scheduler: linger of the load driver's and no-op bridges' producers (0: the bench default, 2ms; negative: none)")
	var ch benchchain.Config
	rates := config.NewList("200", "500", "1000", "2000")
	fs.Var(rates, "rates", "chain: offered rates, requests per second, each run for --duration")
	targets := config.NewList("direct", "chain")
	fs.Var(targets, "targets", "chain: what the load is offered to, side by side at each rate: direct (one no-op worker), chain, the names of --external targets (default: direct, chain and every --external)")
	var externals, externalPIDs, externalCmds repeated
	fs.Var(&externals, "external", "chain: name=URL, repeatable: also offer the load to this HTTP target (after direct, before the chain); {fn} in URL is replaced by the function's name, else the name is appended (http://127.0.0.1:9020/run/)")
	fs.Var(&externalPIDs, "external-pid", "chain: name=pid, repeatable: the --external target's process, to report its CPU per request")
	fs.Var(&externalCmds, "external-cmd", "chain: name='program arg...', repeatable: start the --external target's process afresh before each of its runs and stop it after (no state kept from an earlier rate; its CPU reported; split at spaces, no quoting)")
	workerAddrs := config.NewList()
	fs.Var(workerAddrs, "worker-addrs", "chain: host:port of each no-op worker, comma-separated (default: free ports), so that an --external proxy can front the same workers")
	direct := fs.Bool("direct", false, "chain: only the baseline, one no-op worker called directly (--targets direct)")
	fs.BoolVar(&ch.Processes, "processes", false, "chain: run each part as a pullsched process (and report each part's CPU) instead of in this process")
	fs.DurationVar(&ch.Timeout, "timeout", 10*time.Second, "chain: each request's timeout at the client, also sent as ?timeout=")
	fs.DurationVar(&ch.Warmup, "warmup", 2*time.Second, "chain: unrecorded load at the lowest rate before the runs (negative: none)")
	fs.DurationVar(&ch.AdmissionTarget, "admission-target", 0, "chain: the controller's --admission-target (0: its default; negative: off)")
	fs.IntVar(&ch.BrokerPID, "broker-pid", 0, "chain: pid of the --brokers Kafka, to report its CPU per request")
	fs.StringVar(&ch.Binary, "binary", "", "chain --processes: the pullsched executable (default: this one)")
	fs.IntVar(&ch.PartProcs, "part-gomaxprocs", benchchain.DefaultPartProcs, "chain --processes: --gomaxprocs of every part (0: each part's own default: 1 for the invokers, Go's for the others)")
	fs.StringVar(&ch.LogDir, "log-dir", "", "chain --processes: directory of the parts' logs (default: a new temporary one)")
	cpuProfile := fs.String("cpuprofile", "", "chain: write a CPU profile of the first chain run here (in-process; samples labelled part=...)")
	jsonOut := fs.String("json", "", "chain: also write the report as JSON to this file (- for stdout)")
	return func(ctx context.Context) error {
		if len(c.args) != 1 || (c.args[0] != "scheduler" && c.args[0] != "chain") {
			return fmt.Errorf("%s", benchUsage)
		}
		if c.args[0] == "chain" {
			ch.WorkerAddrs = workerAddrs.Values
			if err := addExternals(&ch, externals, externalPIDs, externalCmds); err != nil {
				return err
			}
			return benchChain(ctx, fs, c, ch, cfg, *embedded, rates.Values, targets.Values, *direct, *cpuProfile, *jsonOut)
		}
		if !*embedded {
			if k := c.kafkaConn(); k.TLS.Enabled || k.SASL.Mechanism != "" {
				return fmt.Errorf("bench: the benchmark rig speaks plaintext without SASL only; drop the --kafka-tls* and --kafka-sasl-* settings")
			}
			cfg.Brokers = c.brokers.Values
		}
		cfg.Partitions = int32(c.partitions)
		cfg.Logger = c.log
		res, err := schedbench.Run(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, res.String())
		return nil
	}
}

// benchChain runs `pullsched bench chain`: the flags shared with bench
// scheduler take the chain's defaults unless set.
func benchChain(ctx context.Context, fs *flag.FlagSet, c *common, ch benchchain.Config, sc schedbench.Config,
	embedded bool, rates, targets []string, direct bool, cpuProfile, jsonOut string) error {
	if flagWasSet(fs, "workers") {
		ch.Workers = sc.Workers
	}
	if flagWasSet(fs, "functions") {
		ch.Functions = sc.Functions
	}
	if flagWasSet(fs, "duration") {
		ch.Duration = sc.Duration
	}
	for _, r := range rates {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || !(v > 0) {
			return fmt.Errorf("--rates: bad rate %q", r)
		}
		ch.Rates = append(ch.Rates, v)
	}
	if direct {
		targets = []string{"direct"}
	}
	all := ch.Externals
	if direct || flagWasSet(fs, "targets") {
		ch.Externals = nil
	}
	for _, t := range targets {
		switch t {
		case "direct":
			ch.Direct = true
		case "chain":
			ch.Chain = true
		default:
			i := slices.IndexFunc(all, func(e benchchain.External) bool { return e.Name == t })
			if i < 0 {
				return fmt.Errorf("--targets: unknown target %q (want direct, chain or an --external's name)", t)
			}
			if !direct && flagWasSet(fs, "targets") {
				ch.Externals = append(ch.Externals, all[i])
			}
		}
	}
	if !ch.Direct && !ch.Chain && len(ch.Externals) == 0 {
		return fmt.Errorf("--targets: no target")
	}
	if flagWasSet(fs, "brokers") && !embedded {
		ch.Kafka = c.kafkaConn()
	}
	ch.Partitions = int32(c.partitions)
	ch.Logger = c.log
	ch.Progress = c.stderr
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		ch.CPUProfile = f
	}
	rep, err := benchchain.Run(ctx, ch)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(c.stdout); err != nil {
		return err
	}
	switch jsonOut {
	case "":
	case "-":
		return rep.WriteJSON(c.stdout)
	default:
		f, err := os.Create(jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		return rep.WriteJSON(f)
	}
	return nil
}

// repeated is a flag that may be given more than once, each value kept
// whole (a URL may hold commas).
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, " ") }

func (r *repeated) Set(s string) error {
	*r = append(*r, s)
	return nil
}

// addExternals reads the --external, --external-pid and --external-cmd
// flags into ch.
func addExternals(ch *benchchain.Config, externals, pids, cmds repeated) error {
	for _, s := range externals {
		e, err := benchchain.ParseExternal(s)
		if err != nil {
			return fmt.Errorf("--external: %w", err)
		}
		ch.Externals = append(ch.Externals, e)
	}
	for _, s := range pids {
		name, pid, err := benchchain.ParseNamedPID(s)
		if err != nil {
			return fmt.Errorf("--external-pid: %w", err)
		}
		i, err := externalNamed(ch, "--external-pid", name)
		if err != nil {
			return err
		}
		ch.Externals[i].PID = pid
	}
	for _, s := range cmds {
		name, args, err := benchchain.ParseNamedCommand(s)
		if err != nil {
			return fmt.Errorf("--external-cmd: %w", err)
		}
		i, err := externalNamed(ch, "--external-cmd", name)
		if err != nil {
			return err
		}
		ch.Externals[i].Command = args
	}
	return nil
}

// externalNamed is the index in ch.Externals of the --external named name,
// which the given flag refers to.
func externalNamed(ch *benchchain.Config, flag, name string) (int, error) {
	i := slices.IndexFunc(ch.Externals, func(e benchchain.External) bool { return e.Name == name })
	if i < 0 {
		return 0, fmt.Errorf("%s: no --external named %q", flag, name)
	}
	return i, nil
}
