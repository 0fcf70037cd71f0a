package broker

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pullsched/pullsched/logging"
)

// DefaultPort is the port a broker listens on when Config.Ports is empty;
// it is Kafka's usual port, so clients' default seed 127.0.0.1:9092 finds it.
const DefaultPort = 9092

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("broker: invalid config")

// Config configures an embedded broker. The zero value is valid: one broker
// on 127.0.0.1:9092, in memory, three partitions per auto-created topic.
type Config struct {
	// Host is the address the brokers listen on and advertise in metadata.
	// Default "127.0.0.1". Anything other than a loopback address exposes
	// an unauthenticated broker to the network.
	Host string

	// Ports lists one port per broker; the cluster has len(Ports) brokers.
	// A 0 picks a free port (use it in tests and read Addrs). Default
	// [DefaultPort], a single broker.
	Ports []int

	// DataDir, if set, persists the cluster's state (topics, records,
	// committed offsets, producer ids) to this directory and reloads it on
	// start, so a restart keeps what was written. The directory is created
	// if needed. Default "": memory only, everything is lost on Close.
	DataDir string

	// SyncWrites fsyncs every produced batch when DataDir is set. Default
	// false: like Kafka's default, data reaches the disk through the page
	// cache and on Close, so a crash (not a Close) can lose recent records;
	// true costs an fsync per batch.
	SyncWrites bool

	// Partitions is the partition count of topics created without one:
	// auto-created topics and CreateTopics requests asking for -1. Default 3,
	// the num.partitions that scripts/kafka.sh gives the real Kafka, so both
	// brokers behave alike. Topics created by `pullsched topics create`
	// carry their own count and are unaffected.
	Partitions int

	// DisableAutoCreate refuses to create topics named in a metadata request
	// that asks for auto-creation. Default false: topics are auto-created,
	// as with Kafka's default auto.create.topics.enable=true.
	DisableAutoCreate bool

	// ClusterID is the cluster id reported in metadata. Default "pullsched".
	ClusterID string

	// Logger receives the broker's own log lines: kfake errors and warnings
	// at their level, its per-request info lines at debug and its debug
	// lines at trace. Default: zerolog.Nop().
	Logger zerolog.Logger
}

// WithDefaults returns a copy of c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if len(c.Ports) == 0 {
		c.Ports = []int{DefaultPort}
	} else {
		c.Ports = append([]int(nil), c.Ports...)
	}
	if c.Partitions == 0 {
		c.Partitions = 3
	}
	if c.ClusterID == "" {
		c.ClusterID = "pullsched"
	}
	return c
}

// Validate reports whether the config, with defaults applied, can start a
// broker. Errors wrap ErrConfig.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if ip := net.ParseIP(c.Host); ip == nil && c.Host != "localhost" {
		return fmt.Errorf("%w: host %q is not an IP address or localhost", ErrConfig, c.Host)
	}
	seen := make(map[int]bool, len(c.Ports))
	for _, p := range c.Ports {
		if p < 0 || p > 65535 {
			return fmt.Errorf("%w: port %d out of range", ErrConfig, p)
		}
		if p != 0 && seen[p] {
			return fmt.Errorf("%w: port %d listed twice", ErrConfig, p)
		}
		seen[p] = true
	}
	if c.Partitions < 1 {
		return fmt.Errorf("%w: partitions %d must be at least 1", ErrConfig, c.Partitions)
	}
	return nil
}

// Broker is a running embedded cluster. Close stops it.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	log     zerolog.Logger
}

// New starts an embedded broker as cfg says and returns once it listens.
// It fails if a port is taken or the data directory cannot be loaded.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	host := cfg.Host
	opts := []kfake.Opt{
		kfake.Ports(cfg.Ports...),
		// kfake always asks for 127.0.0.1:<port>; listen on the configured
		// host instead, which kfake then advertises in metadata.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, port))
		}),
		kfake.WithLogger(zerologBridge{cfg.Logger}),
		kfake.ClusterID(cfg.ClusterID),
		kfake.DefaultNumPartitions(cfg.Partitions),
		// Schedulers ask for a 2s group session so a crashed replica's
		// partitions move within about 2.5s; Kafka's (and kfake's) 6s
		// minimum would refuse it. Set as a broker config so that
		// DescribeConfigs reports what is enforced.
		kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "1000"}),
	}
	if !cfg.DisableAutoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start on %s ports %v: %w", cfg.Host, cfg.Ports, err)
	}
	return &Broker{cluster: c, addrs: c.ListenAddrs(), log: cfg.Logger}, nil
}

// Start is New under the name the CLI and tests use: it starts a broker and
// returns once it listens.
func Start(cfg Config) (*Broker, error) { return New(cfg) }

// Addrs returns the host:port of every broker, for use as seed brokers.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Cluster returns the underlying kfake cluster, for tests that inject
// faults (ControlKey, KeepControl) or move partitions.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker. With a DataDir it first writes its state to disk.
// Close is safe to call more than once.
func (b *Broker) Close() { b.cluster.Close() }

// Run starts a broker, logs its addresses, serves until ctx is done and then
// closes it. It returns an error only if the broker cannot start.
func Run(ctx context.Context, cfg Config) error {
	b, err := New(cfg)
	if err != nil {
		return err
	}
	ev := cfg.Logger.Info().Strs("addrs", b.Addrs())
	if cfg.DataDir != "" {
		ev = ev.Str("data_dir", cfg.DataDir)
	}
	ev.Msg("embedded broker listening")
	<-ctx.Done()
	b.Close()
	cfg.Logger.Info().Msg("embedded broker stopped")
	return nil
}

// zerologBridge forwards kfake's log lines to a zerolog logger.
type zerologBridge struct{ log zerolog.Logger }

// Logf implements kfake.Logger. kfake logs every request at info, which is
// debug detail for us; its debug lines go to trace.
func (z zerologBridge) Logf(level kfake.LogLevel, msg string, args ...any) {
	var ev *zerolog.Event
	switch level {
	case kfake.LogLevelError:
		ev = z.log.Error()
	case kfake.LogLevelWarn:
		ev = z.log.Warn()
	case kfake.LogLevelInfo:
		ev = z.log.Debug()
	case kfake.LogLevelDebug:
		ev = z.log.Trace()
	default:
		return
	}
	// A disabled level yields a nil event whose Msgf does not format.
	ev.Str(logging.SubsystemKey, "kfake").Msgf(msg, args...)
}

// RefuseProduce builds the broker's answer to req that refuses every
// partition with err, for fault-injection tests that intercept produce
// requests with Cluster().ControlKey.
func RefuseProduce(req *kmsg.ProduceRequest, err *kerr.Error) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Version = req.Version
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = err.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
