package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pullsched/pullsched/cluster"
	"github.com/pullsched/pullsched/workersim"
)

func setupDev(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "127.0.0.1:9020")
	var p policyFlags
	addPolicyFlags(fs, &p)
	brokerPort := fs.Int("broker-port", 9092, "port of the embedded broker (unless --brokers is given)")
	workers := fs.Int("num-workers", 5, "simulated OpenLambda workers, each with its invoker bridge")
	capacity := fs.Int("capacity", 0, "in-flight limit each bridge advertises (0: no limit, as Hiku)")
	token := fs.String("admin-token", "", "admin API bearer token (default: a random one, printed)")
	var sim workersim.Config
	fs.IntVar(&sim.Cores, "cores", workersim.DefaultCores, "simulated CPUs per worker")
	fs.IntVar(&sim.MemoryMB, "memory-mb", workersim.DefaultMemoryMB, "sandbox memory per worker in MB")
	fs.IntVar(&sim.SandboxMB, "sandbox-mb", workersim.DefaultSandboxMB, "memory per sandbox in MB")
	fs.Float64Var(&sim.TimeScale, "time-scale", 1, "wall time per simulated time (0.1 runs ten times faster)")
	fs.DurationVar(&sim.KeepAlive, "sim-keep-alive", 0, "idle sandbox lifetime on the simulated workers (0: until memory pressure)")
	return func(ctx context.Context) error {
		if *token == "" {
			var b [16]byte
			_, _ = rand.Read(b[:])
			*token = hex.EncodeToString(b[:])
		}
		cfg := cluster.Config{
			BrokerPort: *brokerPort, Topics: c.topicsConfig(),
			Policy: p.name, PolicyConfig: p.config(), Pending: p.pending,
			Workers: *workers, WorkerCapacity: *capacity, Sim: sim,
			ControllerListen: c.listen, AdminToken: *token, Logger: c.log,
		}
		if flagWasSet(fs, "brokers") {
			cfg.Brokers, cfg.Kafka = c.brokers.Values, c.kafkaConn()
		} else if k := c.kafkaConn(); k.TLS.Enabled || k.SASL.Mechanism != "" {
			return fmt.Errorf("dev: the --kafka-tls* and --kafka-sasl-* settings need --brokers (the embedded broker serves plaintext)")
		}
		if cfg.Brokers == nil && !flagWasSet(fs, "broker-port") && portTaken(*brokerPort) {
			// A Kafka of the user's own often holds 9092: take any free port
			// rather than fail; the banner prints the one taken.
			c.log.Warn().Int("port", *brokerPort).Msg("the embedded broker's default port is taken; using a free one")
			cfg.BrokerPort = 0
		}
		startCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cl, err := cluster.Start(startCtx, cfg)
		cancel()
		if err != nil {
			return err
		}
		url := cl.ControllerURL()
		fmt.Fprintf(c.stdout, "\npullsched dev is up (policy %s)\n\n", p.name)
		fmt.Fprintf(c.stdout, "  broker      %v (topics prefixed %q)\n", cl.Brokers(), c.topicsConfig().Names().Prefix)
		fmt.Fprintf(c.stdout, "  controller  %s   (metrics %s/metrics)\n", url, url)
		fmt.Fprintf(c.stdout, "  scheduler   %s/metrics\n", cl.SchedulerURL())
		for _, w := range cl.Workers() {
			fmt.Fprintf(c.stdout, "  %-10s  %s   bridge %s\n", w.ID, w.URL, w.BridgeURL)
		}
		fmt.Fprintf(c.stdout, "  admin token %s\n\n", *token)
		fmt.Fprintf(c.stdout, "try:\n  curl -s -i -X POST %s/run/linpack-1 -d '{\"n\": 100}'\n", url)
		fmt.Fprintf(c.stdout, "  curl -s -H 'Authorization: Bearer %s' %s/admin/workers\n\nCtrl-C stops everything.\n", *token, url)
		<-ctx.Done()
		fmt.Fprintln(c.stdout, "stopping: ingress, bridges, scheduler, workers, broker")
		return cl.Stop()
	}
}

// portTaken reports whether 127.0.0.1:port cannot be listened on.
func portTaken(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return true
	}
	ln.Close()
	return false
}
