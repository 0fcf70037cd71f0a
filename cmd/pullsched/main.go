// Command pullsched is the one binary of pullsched: one subcommand per part
// (broker, topics, scheduler, invoker, controller, workersim, loadgen), plus
// dev (everything in one process on an embedded broker), eval and bench.
// It only wires: each part's logic lives in its package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/config"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/logging"
	"github.com/pullsched/pullsched/topics"
)

// command is one subcommand. setup registers its flags on fs and returns
// the function that runs it once flags, environment and file are read.
type command struct {
	name    string
	summary string
	setup   func(fs *flag.FlagSet, c *common) func(ctx context.Context) error
}

// commands lists the subcommands; the order is the order of the help text.
var commands = []command{
	{"dev", "run everything in one process on an embedded broker", setupDev},
	{"broker", "run the embedded Kafka-compatible broker (franz-go kfake)", setupBroker},
	{"topics", "create (idempotent) or describe the topics: topics create|describe", setupTopics},
	{"scheduler", "run a scheduler replica", setupScheduler},
	{"invoker", "run an invoker bridge for one worker (sidecar) or for admin-added workers (--pool)", setupInvoker},
	{"controller", "run the HTTP ingress and admin API", setupController},
	{"openwhisk", "place the activations of an OpenWhisk deployment (docs/OPENWHISK.md)", setupOpenWhisk},
	{"workersim", "run a simulated OpenLambda worker", setupWorkersim},
	{"loadgen", "drive the Hiku workload against a controller", setupLoadgen},
	{"eval", "compare policies on the Hiku workload in fresh simulated clusters", setupEval},
	{"bench", "benchmark a part or the whole chain: bench scheduler|chain", setupBench},
	{"health", "probe a part's /readyz (a workersim's /status): the container health check", setupHealth},
	{"chaos", "start the parts as processes against a Kafka and inject faults under load: chaos [--short]", setupChaos},
}

// common holds the settings every subcommand shares.
type common struct {
	stdout, stderr io.Writer
	args           []string // positional arguments after the flags

	brokers     *config.List
	kafka       kafkaconn.Config // TLS, SASL and client id; Brokers come from brokers
	topicPrefix string
	listen      string
	logLevel    string
	configFile  string
	partitions  int
	replication int

	log zerolog.Logger

	trace bool   // --trace (trace.go)
	pprof string // --pprof (pprof.go)
	procs int    // --gomaxprocs (procs.go)
}

func addCommon(fs *flag.FlagSet, c *common, defaultListen string) {
	c.brokers = config.NewList("127.0.0.1:9092")
	fs.Var(c.brokers, "brokers", "comma-separated Kafka seed brokers")
	c.kafka.AddFlags(fs)
	fs.StringVar(&c.topicPrefix, "topic-prefix", topics.DefaultPrefix, "prefix of every topic name")
	fs.StringVar(&c.listen, "listen", defaultListen, "host:port of this part's HTTP server (metrics, health, its API)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.configFile, config.ConfigFlag, "", "YAML or JSON config file (keys are flag names; Hiku's JSON is accepted)")
	fs.IntVar(&c.partitions, "partitions", topics.DefaultPartitions, "partitions of arrivals and worker-events when creating them")
	fs.IntVar(&c.replication, "replication", -1, "replication factor of created topics (-1: the broker's default)")
}

// kafkaConn is how the common flags say to reach Kafka: --brokers with
// the --kafka-* TLS, SASL and client-id settings.
func (c *common) kafkaConn() kafkaconn.Config {
	k := c.kafka
	k.Brokers = c.brokers.Values
	return k
}

// topicsConfig is the topics.Config the common flags describe.
func (c *common) topicsConfig() topics.Config {
	return topics.Config{Prefix: c.topicPrefix, NoPrefix: c.topicPrefix == "", Partitions: int32(c.partitions), Replication: int16(c.replication)}
}

// brokerFlagSet reports whether the user named brokers explicitly.
func flagWasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set || os.Getenv(config.EnvName(name)) != ""
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "pullsched: a pull-based scheduler for serverless functions on Kafka\n\nusage: pullsched <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nEvery flag can also be set as PULLSCHED_<FLAG> (e.g. PULLSCHED_BROKERS) or in a --config file.\nRun 'pullsched <command> -h' for its flags.\n")
}

// newFlagSet builds the flag set of a subcommand with its run function.
func newFlagSet(cmd command, c *common) (*flag.FlagSet, func(ctx context.Context) error) {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	run := cmd.setup(fs, c)
	addTraceFlag(fs, c)
	addPprofFlag(fs, c)
	if def, ok := partProcs[cmd.name]; ok {
		addProcsFlag(fs, c, def)
	}
	return fs, run
}

// run executes the subcommand named by args[0].
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == args[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	c := &common{stdout: stdout, stderr: stderr}
	fs, runFn := newFlagSet(*cmd, c)
	// Flags may come before and after positional words
	// (pullsched topics create --brokers x).
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		c.args = append(c.args, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if err := config.Load(fs, getenv); err != nil {
		return err
	}
	log, err := logging.New(c.logLevel, stderr)
	if err != nil {
		return err
	}
	// Parts name themselves in their log lines ("part" field).
	c.log = log
	if fs.Lookup("gomaxprocs") != nil {
		procs := applyProcs(c, flagWasSet(fs, "gomaxprocs"), getenv)
		c.log.Debug().Int("gomaxprocs", procs).Msg("threads running Go code")
	}
	stopTracing, err := startTracing(ctx, fs, c, cmd.name, getenv)
	if err != nil {
		return err
	}
	defer stopTracing()
	stopPprof, err := startPprof(ctx, c.pprof, c)
	if err != nil {
		return err
	}
	defer stopPprof()
	return runFn(ctx)
}

// knownEnv lists every PULLSCHED_* variable some subcommand reads.
func knownEnv() []string {
	seen := map[string]bool{}
	for _, cmd := range commands {
		fs, _ := newFlagSet(cmd, &common{stdout: io.Discard, stderr: io.Discard})
		fs.VisitAll(func(f *flag.Flag) { seen[config.EnvName(f.Name)] = true })
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "pullsched:", strings.TrimSpace(err.Error()))
		os.Exit(1)
	}
}
