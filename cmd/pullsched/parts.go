package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/pullsched/pullsched/config"
	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/controllerbridge"
	"github.com/pullsched/pullsched/invokerbridge"
	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/scheduler"
)

// policyFlags are the settings of the placement policy and pending queue,
// shared by scheduler, dev and bench.
type policyFlags struct {
	name      string
	seed      int64
	keepAlive time.Duration
	loadBound float64
	pending   string
	pendCap   int
	capacity  int
}

func addPolicyFlags(fs *flag.FlagSet, p *policyFlags) {
	fs.StringVar(&p.name, "policy", scheduler.DefaultPolicy, fmt.Sprintf("placement policy: %v (Hiku's names are accepted too)", policy.Names()))
	fs.Int64Var(&p.seed, "seed", 1, "seed of the policy's random tie-breaks")
	fs.DurationVar(&p.keepAlive, "keep-alive", policy.DefaultKeepAlive, "how long an idle entry is trusted without news from its worker")
	fs.Float64Var(&p.loadBound, "load-bound", policy.DefaultLoadBound, "chbl's load bound c")
	fs.StringVar(&p.pending, "pending", "fifo", fmt.Sprintf("pending-queue discipline: %v", policy.Disciplines()))
	fs.IntVar(&p.pendCap, "pending-cap", scheduler.DefaultPendingCap, "bound of the pending queue; beyond it arrivals get 429")
	fs.IntVar(&p.capacity, "worker-capacity", 0, "in-flight limit of a worker that advertises none (0: unlimited, as in Hiku)")
}

func (p *policyFlags) config() policy.Config {
	return policy.Config{Seed: p.seed, KeepAlive: p.keepAlive, LoadBound: p.loadBound}
}

func setupScheduler(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9030")
	var p policyFlags
	addPolicyFlags(fs, &p)
	id := fs.String("id", "", "replica id (default <hostname>-<pid>)")
	hb := fs.Duration("heartbeat-timeout", scheduler.DefaultHeartbeatTimeout, "a worker silent this long leaves the rotation")
	timeout := fs.Duration("default-timeout", scheduler.DefaultArrivalTimeout, "execution timeout of arrivals without a deadline")
	stuck := fs.Duration("stuck-after", consumer.DefaultStuckAfter, "/readyz fails when a partition holds unfinished records and finishes none this long (negative: never)")
	session := fs.Duration("session-timeout", scheduler.DefaultSessionTimeout, "consumer-group session: a crashed replica's partitions move to the others after about 1.25× this (raised to the broker's group.min.session.timeout.ms)")
	shedLag := fs.Duration("shed-lag", scheduler.DefaultShedLag, "an arrival read this long after it arrived at the ingress is answered 429 overloaded at once instead of placed: the scheduler is behind (0: off, the default chosen by measurement: it lowered goodput where the scheduler was the bottleneck, docs/BENCHMARKS.md)")
	return func(ctx context.Context) error {
		s, err := scheduler.New(scheduler.Config{
			Kafka: c.kafkaConn(), Topics: c.topicsConfig(), Listen: c.listen, Logger: c.log,
			ID: *id, Policy: p.name, PolicyConfig: p.config(), Pending: p.pending, PendingCap: p.pendCap,
			DefaultCapacity: p.capacity, HeartbeatTimeout: *hb, DefaultTimeout: *timeout, StuckAfter: *stuck,
			SessionTimeout: *session, ShedLag: *shedLag,
		})
		if err != nil {
			return err
		}
		c.log.Info().Str("policy", p.name).Object("kafka", c.kafkaConn()).Str("listen", s.Addr()).Msg("scheduler starting")
		return s.Run(ctx)
	}
}

func setupInvoker(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9040")
	var cfg invokerbridge.Config
	fs.StringVar(&cfg.ID, "id", "", "bridge id (default invoker-<hostname>)")
	fs.StringVar(&cfg.WorkerURL, "worker-url", "", "OpenLambda base URL of the worker this sidecar serves (required unless --pool)")
	fs.StringVar(&cfg.WorkerID, "worker-id", "", "worker id (default: the URL's host-port, as the admin API names it)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "host:port eviction notices name this worker by (default: the URL's)")
	fs.BoolVar(&cfg.Pool, "pool", false, "serve every admin-added worker from the workers topic instead of one worker")
	fs.IntVar(&cfg.Capacity, "capacity", 0, "in-flight limit advertised to the scheduler, and concurrent calls per worker (0: no limit, as Hiku; see docs/EVALUATION.md for what a limit costs)")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", invokerbridge.DefaultHeartbeatInterval, "how often the worker record is written")
	fs.DurationVar(&cfg.CallTimeout, "call-timeout", invokerbridge.DefaultCallTimeout, "bound of a call whose assignment has no deadline")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", invokerbridge.DefaultDrainTimeout, "how long shutdown waits for calls in flight")
	fs.DurationVar(&cfg.StuckAfter, "stuck-after", consumer.DefaultStuckAfter, "/readyz fails when a worker's partition holds records no call runs and finishes none this long (negative: never)")
	fs.DurationVar(&cfg.PredecessorWindow, "predecessor-window", invokerbridge.DefaultPredecessorWindow, "how far back worker-events are read for what a crashed predecessor finished, so re-delivered assignments are not run again (negative: never)")
	fs.Int64Var(&cfg.PredecessorMaxBytes, "predecessor-max-bytes", invokerbridge.DefaultPredecessorMaxBytes, "bound of the bytes that read takes")
	fs.DurationVar(&cfg.PredecessorTimeout, "predecessor-timeout", invokerbridge.DefaultPredecessorTimeout, "bound of the time that read takes before the partition is served")
	return func(ctx context.Context) error {
		cfg.Kafka, cfg.Topics, cfg.Listen, cfg.Logger = c.kafkaConn(), c.topicsConfig(), c.listen, c.log
		b, err := invokerbridge.New(cfg)
		if err != nil {
			return err
		}
		c.log.Info().Bool("pool", cfg.Pool).Str("worker_url", cfg.WorkerURL).Object("kafka", cfg.Kafka).Str("listen", b.Addr()).Msg("invoker bridge starting")
		return b.Run(ctx)
	}
}

func setupController(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9020")
	var cfg controllerbridge.Config
	addControllerFlags(fs, &cfg)
	workers := config.NewList()
	fs.Var(workers, "workers", "worker URLs to add through the admin API at start (Hiku's config key)")
	return func(ctx context.Context) error {
		cfg.Kafka, cfg.Topics, cfg.Listen, cfg.Logger = c.kafkaConn(), c.topicsConfig(), c.listen, c.log
		ctl, err := controllerbridge.New(cfg)
		if err != nil {
			return err
		}
		c.log.Info().Str("id", cfg.ID).Object("kafka", cfg.Kafka).Str("listen", ctl.Addr()).Msg("controller starting")
		errc := make(chan error, 1)
		go func() { errc <- ctl.Run(ctx) }()
		if len(workers.Values) > 0 {
			select {
			case <-ctl.Ready():
				if err := ctl.AddWorkers(ctx, workers.Values); err != nil {
					c.log.Error().Err(err).Msg("adding configured workers")
				}
			case err := <-errc:
				return err
			}
		}
		return <-errc
	}
}

func addControllerFlags(fs *flag.FlagSet, cfg *controllerbridge.Config) {
	fs.StringVar(&cfg.ID, "id", "", "controller id; results come back on results.<id> (default from the hostname)")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token of the admin API (empty: admin API disabled)")
	fs.Int64Var(&cfg.MaxBody, "max-body", controllerbridge.DefaultMaxBody, "largest request body in bytes (413 beyond); the default is what one arrival record can carry")
	fs.Int64Var(&cfg.MaxActivationBytes, "max-activation-bytes", controllerbridge.DefaultMaxActivationBytes, "bytes of results kept for GET /activations and Idempotency-Key retries; oldest forgotten first")
	fs.DurationVar(&cfg.DefaultTimeout, "default-timeout", 60*time.Second, "how long a request waits for its result unless ?timeout= says otherwise")
	fs.DurationVar(&cfg.MaxTimeout, "max-timeout", controllerbridge.DefaultMaxTimeout, "largest ?timeout= accepted")
	fs.IntVar(&cfg.MaxWaiting, "max-waiting", controllerbridge.DefaultMaxWaiting, "blocking requests waiting at once (429 beyond)")
	fs.DurationVar(&cfg.AdmissionTarget, "admission-target", controllerbridge.DefaultAdmissionTarget, "when every request answered in 100ms waited longer than this in the chain (its time less the function's), limit the requests waiting and answer the rest 429 at once (negative: off; default chosen by measurement, docs/BENCHMARKS.md)")
}
