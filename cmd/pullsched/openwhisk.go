package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/config"
	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/eval"
	"github.com/pullsched/pullsched/owbridge"
	"github.com/pullsched/pullsched/owbridge/owsim"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/workersim"
)

// setupOpenWhisk is `pullsched openwhisk`: the bridge that lets pullsched
// place the activations of an OpenWhisk deployment (docs/OPENWHISK.md).
func setupOpenWhisk(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9050")
	var cfg owbridge.Config
	controllers := config.NewList("0")
	fs.StringVar(&cfg.ControllerPrefix, "ow-controller-prefix", "owctl.", "topic prefix the OpenWhisk controllers were given (CONFIG_whisk_kafka_topics_prefix); must differ from the invokers'")
	fs.StringVar(&cfg.InvokerPrefix, "ow-invoker-prefix", "", "topic prefix of the OpenWhisk invokers (stock: none)")
	fs.Var(controllers, "ow-controllers", "comma-separated controller instance ids whose acks (completed<id>) the bridge forwards")
	fs.StringVar(&cfg.ID, "id", "", "bridge id: the bridge of its worker records, and results.<id> (default openwhisk-<hostname>)")
	fs.StringVar(&cfg.Group, "group", "pullsched-openwhisk", "prefix of the bridge's own consumer groups (never one of OpenWhisk's)")
	fs.IntVar(&cfg.FacadeInstance, "facade-instance", 0, "instance number of the virtual invoker the controllers see")
	facadeMem := fs.String("facade-user-memory", "1024 GB", "userMemory the virtual invoker announces (large, so the controllers never hold back)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", time.Second, "how often the virtual invoker pings the controllers")
	fs.IntVar(&cfg.DefaultMemoryMB, "default-memory-mb", 256, "an action's memory until its acks tell its limits")
	fs.DurationVar(&cfg.DefaultTimeout, "default-action-timeout", 60*time.Second, "an action's time limit until its acks tell its limits")
	fs.IntVar(&cfg.ForcedAckFactor, "ow-timeout-factor", 2, "the controllers' loadbalancer timeout-factor (their forced ack comes max(limit, 60s) × factor + addon after sending)")
	fs.DurationVar(&cfg.ForcedAckAddon, "ow-timeout-addon", time.Minute, "the controllers' loadbalancer timeout-addon")
	fs.DurationVar(&cfg.AnswerMargin, "answer-margin", 10*time.Second, "how long before the controller's forced ack pullsched's timeout answer is due")
	fs.IntVar(&cfg.SlotMB, "slot-mb", 256, "memory one activation counts against an invoker's userMemory: its capacity is userMemory / slot-mb")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", time.Second, "how often each live invoker's worker record is written")
	fs.DurationVar(&cfg.InvokerTimeout, "invoker-timeout", 3*time.Second, "an invoker silent this long loses its heartbeats (the scheduler drops it)")
	fs.IntVar(&cfg.UnhealthyErrors, "unhealthy-errors", 3, "system errors among an invoker's last 10 acks beyond which it is reported unhealthy")
	fs.DurationVar(&cfg.ErrorMemory, "error-memory", time.Minute, "how long an invoker's system error counts (an unhealthy invoker gets no work, so its errors must age out)")
	fs.DurationVar(&cfg.DedupeWindow, "dedupe-window", 2*time.Minute, "how long an answered activation is remembered to recognise its re-delivered assignment or acks")
	fs.DurationVar(&cfg.StuckAfter, "stuck-after", consumer.DefaultStuckAfter, "/readyz fails when a partition holds unfinished records and finishes none this long (negative: never)")
	infer := fs.Bool("infer-evictions", true, "tell the schedulers of the containers the invokers evict, inferred from a model of their pools (invokers announce none)")
	return func(ctx context.Context) error {
		cfg.NoInferredEvictions = !*infer
		mem, err := owbridge.ParseByteSize(*facadeMem)
		if err != nil {
			return fmt.Errorf("--facade-user-memory: %w", err)
		}
		cfg.FacadeUserMemory = mem
		cfg.Controllers = controllers.Values
		cfg.Kafka, cfg.Topics, cfg.Listen, cfg.Logger = c.kafkaConn(), c.topicsConfig(), c.listen, c.log
		b, err := owbridge.New(cfg)
		if err != nil {
			return err
		}
		c.log.Info().Str("controller_prefix", cfg.ControllerPrefix).Strs("controllers", cfg.Controllers).
			Object("kafka", cfg.Kafka).Str("listen", b.Addr()).Msg("openwhisk bridge starting")
		return b.Run(ctx)
	}
}

// openwhiskStarter starts, for each run of `eval --openwhisk`, a simulated
// OpenWhisk deployment placed by pullsched (package owsim): as many
// invokers as --num-workers, each a simulated worker of the scenario's
// memory, behind the OpenWhisk bridge, with loadgen calling the simulated
// controller.
func openwhiskStarter(o *evalOptions, log zerolog.Logger) eval.Starter {
	return func(ctx context.Context, spec eval.RunSpec) (string, func() error, error) {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cl, err := owsim.Start(sctx, owsim.ClusterConfig{
			Policy: spec.Policy, PolicyConfig: policy.Config{Seed: o.policySeed}, Invokers: o.workers,
			Sim:    workersim.Config{Cores: o.cores, MemoryMB: spec.MemoryMB, SandboxMB: o.sandboxMB, TimeScale: spec.TimeScale},
			Logger: log,
		})
		if err != nil {
			return "", nil, err
		}
		return cl.URL(), cl.Stop, nil
	}
}
