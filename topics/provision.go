package topics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// MaxMessageBytes is the max.message.bytes pullsched sets on every topic it
// creates, and the producer's default batch limit: Kafka's own default
// (1 MiB plus the 12 bytes of log overhead), written down so that producer
// and topics agree even on a broker configured otherwise.
const MaxMessageBytes = 1_048_588

// Config says how topics are named and created.
type Config struct {
	// Prefix is put before every topic name. Default "pullsched."; set
	// NoPrefix to use bare names.
	Prefix string
	// NoPrefix keeps topic names bare even though Prefix is empty.
	NoPrefix bool
	// Partitions of arrivals and worker-events, which must be equal (they
	// are co-partitioned by function): the number of scheduler replicas
	// that can share the work. Default 8.
	Partitions int32
	// Replication is the replication factor of every topic. Default -1:
	// the broker's default.replication.factor.
	Replication int16
	// ArrivalsRetention keeps arrivals (and assignments) this long.
	// Default 24h.
	ArrivalsRetention time.Duration
	// EventsRetention keeps worker-events this long; it must cover the
	// idle keep-alive, because a scheduler rebuilds idle queues from it.
	// Default 6h.
	EventsRetention time.Duration
	// ResultsRetention keeps results this long. Default 1h.
	ResultsRetention time.Duration
	// DLQRetention keeps dead letters this long. Default 7 days.
	DLQRetention time.Duration
}

// DefaultPartitions is Config.Partitions' default: how many partitions
// arrivals and worker-events get, so how many scheduler replicas can share
// the functions.
const DefaultPartitions = 8

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Prefix == "" && !c.NoPrefix {
		c.Prefix = DefaultPrefix
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replication == 0 {
		c.Replication = -1
	}
	if c.ArrivalsRetention == 0 {
		c.ArrivalsRetention = 24 * time.Hour
	}
	if c.EventsRetention == 0 {
		c.EventsRetention = 6 * time.Hour
	}
	if c.ResultsRetention == 0 {
		c.ResultsRetention = time.Hour
	}
	if c.DLQRetention == 0 {
		c.DLQRetention = 7 * 24 * time.Hour
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.Prefix != "" && !regexpTopicChars(c.Prefix) {
		return fmt.Errorf("%w: topic prefix %q: want letters, digits, '_', '.', '-'", ErrInvalid, c.Prefix)
	}
	if c.Partitions < 1 {
		return fmt.Errorf("%w: partitions %d", ErrInvalid, c.Partitions)
	}
	if c.Replication < -1 || c.Replication == 0 {
		return fmt.Errorf("%w: replication %d", ErrInvalid, c.Replication)
	}
	return nil
}

func regexpTopicChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// Names returns the topic names of c.
func (c Config) Names() Names { return NewNames(c.WithDefaults().Prefix) }

// Spec is how one topic is to be created.
type Spec struct {
	Name        string
	Partitions  int32
	Replication int16
	Configs     map[string]string
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// configs returns the settings of a topic: its cleanup policy and the
// given extras, with max.message.bytes set to MaxMessageBytes.
func configs(kv ...string) map[string]string {
	m := map[string]string{"max.message.bytes": strconv.Itoa(MaxMessageBytes)}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// Specs lists the fixed topics of c.
func (c Config) Specs() []Spec {
	c = c.WithDefaults()
	n := c.Names()
	return []Spec{
		{Name: n.Arrivals(), Partitions: c.Partitions, Replication: c.Replication,
			Configs: configs("cleanup.policy", "delete", "retention.ms", ms(c.ArrivalsRetention))},
		{Name: n.WorkerEvents(), Partitions: c.Partitions, Replication: c.Replication,
			Configs: configs("cleanup.policy", "delete", "retention.ms", ms(c.EventsRetention))},
		{Name: n.Workers(), Partitions: 1, Replication: c.Replication,
			Configs: configs("cleanup.policy", "compact", "min.compaction.lag.ms", "60000")},
		{Name: n.DLQ(), Partitions: 1, Replication: c.Replication,
			Configs: configs("cleanup.policy", "delete", "retention.ms", ms(c.DLQRetention))},
	}
}

// InvokerSpec is how the assignment topic of one worker is created: one
// partition keeps the worker's assignments in order.
func (c Config) InvokerSpec(worker string) Spec {
	c = c.WithDefaults()
	return Spec{Name: c.Names().Invoker(worker), Partitions: 1, Replication: c.Replication,
		Configs: configs("cleanup.policy", "delete", "retention.ms", ms(c.ArrivalsRetention))}
}

// ResultsSpec is how the results topic of one controller is created.
func (c Config) ResultsSpec(controller string) Spec {
	c = c.WithDefaults()
	return Spec{Name: c.Names().Results(controller), Partitions: 1, Replication: c.Replication,
		Configs: configs("cleanup.policy", "delete", "retention.ms", ms(c.ResultsRetention))}
}

// Ensure creates every topic in specs that does not exist yet and leaves the
// others alone, so it can run any number of times. It returns the names it
// created. It fails if arrivals and worker-events exist with different
// partition counts, which would break co-partitioning.
func Ensure(ctx context.Context, adm *kadm.Client, specs ...Spec) ([]string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var created []string
	for _, s := range specs {
		if existing.Has(s.Name) {
			continue
		}
		cfgs := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			cfgs[k] = kadm.StringPtr(v)
		}
		_, err := adm.CreateTopic(ctx, s.Partitions, s.Replication, cfgs, s.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return created, fmt.Errorf("create topic %s: %w", s.Name, err)
		}
		if err == nil {
			created = append(created, s.Name)
		}
	}
	return created, nil
}

// CheckCoPartitioned returns an error when the arrivals and worker-events
// topics of n exist with different partition counts.
func CheckCoPartitioned(ctx context.Context, adm *kadm.Client, n Names) error {
	td, err := adm.ListTopics(ctx, n.Arrivals(), n.WorkerEvents())
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	a, w := td[n.Arrivals()], td[n.WorkerEvents()]
	if td.Has(n.Arrivals()) && td.Has(n.WorkerEvents()) && len(a.Partitions) != len(w.Partitions) {
		return fmt.Errorf("%w: %s has %d partitions but %s has %d; they must be co-partitioned",
			ErrInvalid, n.Arrivals(), len(a.Partitions), n.WorkerEvents(), len(w.Partitions))
	}
	return nil
}

// EnsureAll creates the fixed topics of c and checks their co-partitioning.
func EnsureAll(ctx context.Context, adm *kadm.Client, c Config) ([]string, error) {
	created, err := Ensure(ctx, adm, c.Specs()...)
	if err != nil {
		return created, err
	}
	return created, CheckCoPartitioned(ctx, adm, c.Names())
}

// Info describes one existing topic.
type Info struct {
	Name        string
	Partitions  int
	Replication int
	Configs     map[string]string // the settings pullsched cares about, as the broker reports them
}

// Describe lists the existing topics under prefix, sorted by name.
func Describe(ctx context.Context, adm *kadm.Client, prefix string) ([]Info, error) {
	td, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []Info
	var names []string
	for _, d := range td.Sorted() {
		if d.Err != nil || !strings.HasPrefix(d.Topic, prefix) {
			continue
		}
		rf := 0
		for _, p := range d.Partitions {
			rf = len(p.Replicas)
			break
		}
		out = append(out, Info{Name: d.Topic, Partitions: len(d.Partitions), Replication: rf, Configs: map[string]string{}})
		names = append(names, d.Topic)
	}
	if len(names) == 0 {
		return out, nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return out, fmt.Errorf("describe topic configs: %w", err)
	}
	byName := make(map[string]int, len(out))
	for i, in := range out {
		byName[in.Name] = i
	}
	for _, rc := range rcs {
		i, ok := byName[rc.Name]
		if !ok || rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			switch c.Key {
			case "cleanup.policy", "retention.ms", "min.compaction.lag.ms", "max.message.bytes":
				if c.Value != nil {
					out[i].Configs[c.Key] = *c.Value
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
