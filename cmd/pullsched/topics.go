package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

func setupTopics(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	addCommon(fs, c, "")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	return func(ctx context.Context) error {
		if len(c.args) != 1 || (c.args[0] != "create" && c.args[0] != "describe") {
			return fmt.Errorf("usage: pullsched topics create|describe [flags]")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		cfg := c.topicsConfig()
		if err := cfg.Validate(); err != nil {
			return err
		}
		if c.args[0] == "create" {
			created, err := ensureTopics(ctx, c.kafkaConn(), cfg)
			if err != nil {
				return err
			}
			if len(created) == 0 {
				fmt.Fprintln(c.stdout, "all topics already exist")
			}
			for _, t := range created {
				fmt.Fprintln(c.stdout, "created", t)
			}
			return nil
		}
		adm, closeFn, err := admin(c.kafkaConn(), c)
		if err != nil {
			return err
		}
		defer closeFn()
		infos, err := topics.Describe(ctx, adm, cfg.Names().Prefix)
		if err != nil {
			return kafkaconn.Explain(c.kafkaConn(), err)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION\tCONFIG")
		for _, in := range infos {
			keys := make([]string, 0, len(in.Configs))
			for k, v := range in.Configs {
				keys = append(keys, k+"="+v)
			}
			sort.Strings(keys)
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", in.Name, in.Partitions, in.Replication, strings.Join(keys, " "))
		}
		return tw.Flush()
	}
}

// admin is an admin client on a producer's connection (which, being
// lazy, never writes).
func admin(conn kafkaconn.Config, c *common) (*kadm.Client, func(), error) {
	p, err := producer.New(producer.Config{Kafka: conn.WithClientID("pullsched-topics"), Logger: c.log})
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(p.Client()), func() { p.Close(0) }, nil
}

// ensureTopics creates the fixed topics that are missing.
func ensureTopics(ctx context.Context, conn kafkaconn.Config, cfg topics.Config) ([]string, error) {
	p, err := producer.New(producer.Config{Kafka: conn.WithClientID("pullsched-topics")})
	if err != nil {
		return nil, err
	}
	defer p.Close(0)
	created, err := topics.EnsureAll(ctx, kadm.NewClient(p.Client()), cfg)
	if err != nil {
		return created, fmt.Errorf("topics: %w", kafkaconn.Explain(conn, err))
	}
	return created, nil
}
