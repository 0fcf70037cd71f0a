package it

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/broker"
)

// Broker kinds reported in Env.Kind.
const (
	// KindExternal is a broker named by PULLSCHED_IT_BROKERS.
	KindExternal = "external"
	// KindTestcontainers is a Kafka container started through Docker.
	KindTestcontainers = "testcontainers"
	// KindEmbedded is an in-process kfake broker from package broker.
	KindEmbedded = "embedded"
)

// Environment variables the harness reads.
const (
	// EnvBrokers names external seed brokers, comma-separated.
	EnvBrokers = "PULLSCHED_IT_BROKERS"
	// EnvNoDocker, when non-empty and not "0", skips the Docker check.
	EnvNoDocker = "PULLSCHED_IT_NO_DOCKER"
	// EnvKafkaImage overrides DefaultKafkaImage for testcontainers.
	EnvKafkaImage = "PULLSCHED_IT_KAFKA_IMAGE"
)

// DefaultKafkaImage is the image testcontainers runs unless EnvKafkaImage
// names another: the public Apache Kafka image, the version
// docker-compose.yml runs. Any image that takes the same environment
// works; scripts/docker-ci.sh passes pullsched-ci/kafka, built from Maven
// Central's jars, where no registry can be reached.
const DefaultKafkaImage = "apache/kafka:3.9.1"

// Env is the broker a test talks to.
type Env struct {
	// Seeds are the seed brokers (host:port).
	Seeds []string
	// Kind is KindExternal, KindTestcontainers or KindEmbedded.
	Kind string
	// Prefix is a topic prefix unique to this test ("it-<test>-<random>."),
	// so tests sharing one broker never see each other's topics.
	Prefix string
}

// Topic returns name under the test's prefix.
func (e Env) Topic(name string) string { return e.Prefix + name }

// Client returns a kgo client seeded with the test's brokers and opts; it is
// closed when the test ends.
func (e Env) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Seeds...)}, opts...)...)
	if err != nil {
		t.Fatalf("it: kgo client for %v: %v", e.Seeds, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client for the test's brokers, closed when the test
// ends.
func (e Env) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(e.Client(t))
}

// CreateTopic creates topic (a full name, usually from Topic) with the given
// partitions and replication factor 1, and fails the test if it cannot.
func (e Env) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.Admin(t).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("it: create topic %s: %v", topic, err)
	}
}

// choice is the broker source picked once per test binary.
type choice struct {
	kind   string
	seeds  []string // external only
	reason string
	ryuk   string // testcontainers only: whether its reaper runs, and why
}

var (
	chooseOnce sync.Once
	chosen     choice

	// mainActive is set by Main; it lets tests share one container.
	mainActive atomic.Bool

	sharedMu    sync.Mutex
	shared      testcontainers.Container
	sharedErr   error
	sharedSeeds []string
)

func choose() choice {
	chooseOnce.Do(func() {
		if v := strings.TrimSpace(os.Getenv(EnvBrokers)); v != "" {
			var s []string
			for _, b := range strings.Split(v, ",") {
				if b = strings.TrimSpace(b); b != "" {
					s = append(s, b)
				}
			}
			chosen = choice{kind: KindExternal, seeds: s, reason: EnvBrokers + "=" + v}
			return
		}
		if v := os.Getenv(EnvNoDocker); v != "" && v != "0" {
			chosen = choice{kind: KindEmbedded, reason: EnvNoDocker + " is set"}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := pingDocker(ctx); err != nil {
			chosen = choice{kind: KindEmbedded, reason: "no Docker engine: " + err.Error()}
			return
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer rcancel()
		chosen = choice{kind: KindTestcontainers, reason: "a Docker engine answers", ryuk: decideRyuk(rctx)}
	})
	return chosen
}

// Broker returns the broker for this test, as the package doc says, and logs
// which kind it is. Everything it starts is stopped when the test ends.
func Broker(t testing.TB) Env {
	t.Helper()
	c := choose()
	env := Env{Kind: c.kind, Prefix: TopicPrefix(t)}
	switch c.kind {
	case KindExternal:
		env.Seeds = c.seeds
		if err := reachable(env.Seeds, 30*time.Second); err != nil {
			t.Fatalf("it: external brokers %v (%s) do not answer: %v", env.Seeds, EnvBrokers, err)
		}
	case KindTestcontainers:
		s, err := containerSeeds(t)
		if err != nil {
			t.Fatalf("it: Kafka container: %v", err)
		}
		env.Seeds = s
	default:
		b, err := broker.Start(broker.Config{Ports: []int{0}, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatalf("it: embedded broker: %v", err)
		}
		t.Cleanup(b.Close)
		env.Seeds = b.Addrs()
	}
	t.Logf("it: %s broker %v (%s), topic prefix %q", env.Kind, env.Seeds, c.reason, env.Prefix)
	return env
}

// TopicPrefix returns a topic prefix unique to this test and run:
// "it-<test name>-<8 random hex digits>.", with the name reduced to the
// characters Kafka allows in topic names.
func TopicPrefix(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		default:
			return '-'
		}
	}, t.Name())
	if len(name) > 80 {
		name = name[:80]
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "it-" + name + "-" + hex.EncodeToString(b[:]) + "."
}

// Main runs the tests of a TestMain: it prints which broker the binary
// uses (with the Kafka version an external broker reports), runs m and
// stops a shared container afterwards. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(it.Main(m)) }
func Main(m *testing.M) int {
	mainActive.Store(true)
	c := choose()
	fmt.Printf("it: broker kind %s (%s)\n", c.kind, c.reason)
	switch c.kind {
	case KindExternal:
		fmt.Printf("it: external broker: %s\n", Describe(c.seeds))
	case KindTestcontainers:
		// Started before the tests, so the log says what runs them; a
		// failure here fails every test that asks for the broker.
		fmt.Printf("it: testcontainers: image %s on the host network; %s\n", kafkaImage(), c.ryuk)
		start := time.Now()
		sharedMu.Lock()
		shared, sharedSeeds, sharedErr = startShared()
		seeds, err := sharedSeeds, sharedErr
		sharedMu.Unlock()
		if err != nil {
			fmt.Printf("it: testcontainers broker did not start: %v\n", err)
		} else {
			fmt.Printf("it: testcontainers broker up in %.1fs: %s\n", time.Since(start).Seconds(), Describe(seeds))
		}
	}
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		if err := testcontainers.TerminateContainer(shared); err != nil {
			fmt.Fprintf(os.Stderr, "it: terminate Kafka container: %v\n", err)
		}
		shared = nil
	}
	return code
}

// Describe returns a one-line description of the cluster behind seeds:
// cluster id, brokers and, per broker, the Kafka version its API versions
// suggest. It never fails; problems are part of the line.
func Describe(seeds []string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return fmt.Sprintf("%v: %v", seeds, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Sprintf("%v: metadata: %v", seeds, err)
	}
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return fmt.Sprintf("%v: api versions: %v", seeds, err)
	}
	var parts []string
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			parts = append(parts, fmt.Sprintf("node %d: %v", v.NodeID, v.Err))
			continue
		}
		parts = append(parts, fmt.Sprintf("node %d: Kafka %s", v.NodeID, v.VersionGuess()))
	}
	return fmt.Sprintf("cluster %q, %d broker(s) at %v; %s",
		md.Cluster, len(md.Brokers), seeds, strings.Join(parts, ", "))
}

// reachable waits up to timeout for a metadata answer that lists a broker.
func reachable(seeds []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 {
		return errors.New("metadata lists no brokers")
	}
	return nil
}

// containerSeeds returns the seeds of a Kafka container: the shared one
// when Main runs the binary, else one of the test's own.
func containerSeeds(t testing.TB) ([]string, error) {
	if !mainActive.Load() {
		c, s, err := runContainer(kafkaImage())
		if c != nil {
			t.Cleanup(func() {
				if err := testcontainers.TerminateContainer(c); err != nil {
					t.Logf("it: terminate Kafka container: %v", err)
				}
			})
		}
		return s, err
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedSeeds, sharedErr = startShared()
	}
	return sharedSeeds, sharedErr
}

// startShared starts the binary's shared container; on failure it
// terminates what was created and returns no container.
func startShared() (testcontainers.Container, []string, error) {
	c, s, err := runContainer(kafkaImage())
	if err != nil && c != nil {
		_ = testcontainers.TerminateContainer(c)
		c = nil
	}
	return c, s, err
}

// pingDocker asks the Docker engine named by DOCKER_HOST, or found at a
// usual socket path, for /_ping. It returns nil only on a 200 answer.
func pingDocker(ctx context.Context) error {
	code, _, err := dockerAPI(ctx, http.MethodGet, "/_ping", nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("ping: status %d", code)
	}
	return nil
}

// dockerAddr resolves where the Docker engine listens.
func dockerAddr() (network, addr string, err error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		u, err := url.Parse(h)
		if err != nil {
			return "", "", fmt.Errorf("DOCKER_HOST %q: %w", h, err)
		}
		switch u.Scheme {
		case "unix":
			return "unix", u.Path, nil
		case "tcp", "http":
			return "tcp", u.Host, nil
		default:
			return "", "", fmt.Errorf("DOCKER_HOST scheme %q is not supported by the harness", u.Scheme)
		}
	}
	candidates := []string{"/var/run/docker.sock"}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "docker.sock"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".docker", "run", "docker.sock"))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return "unix", p, nil
		}
	}
	return "", "", fmt.Errorf("no DOCKER_HOST and no socket at %s", strings.Join(candidates, ", "))
}
