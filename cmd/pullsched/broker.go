package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"

	"github.com/pullsched/pullsched/broker"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
)

func setupBroker(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	dataDir := fs.String("data-dir", "", "persist topics, records and offsets here (default: memory only)")
	create := fs.Bool("create-topics", true, "create pullsched's topics once the broker is up")
	return func(ctx context.Context) error {
		if k := c.kafkaConn(); k.TLS.Enabled || k.SASL.Mechanism != "" {
			return fmt.Errorf("broker: the embedded broker serves plaintext without SASL; drop the --kafka-tls* and --kafka-sasl-* settings")
		}
		host, port, err := net.SplitHostPort(c.brokers.Values[0])
		if err != nil {
			return fmt.Errorf("--brokers %q: want host:port: %w", c.brokers.Values[0], err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("--brokers %q: bad port", c.brokers.Values[0])
		}
		b, err := broker.Start(broker.Config{Host: host, Ports: []int{p}, DataDir: *dataDir, Logger: c.log})
		if err != nil {
			return err
		}
		defer b.Close()
		if *create {
			created, err := ensureTopics(ctx, kafkaconn.Config{Brokers: b.Addrs()}, c.topicsConfig())
			if err != nil {
				return err
			}
			c.log.Info().Strs("created", created).Msg("topics ready")
		}
		c.log.Info().Strs("addrs", b.Addrs()).Str("data_dir", *dataDir).Msg("embedded broker listening")
		fmt.Fprintf(c.stdout, "broker listening on %s (prefix %q); Ctrl-C stops it\n", b.Addrs()[0], topics.NewNames(c.topicPrefix).Prefix)
		<-ctx.Done()
		return nil
	}
}
