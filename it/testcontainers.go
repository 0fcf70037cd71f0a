package it

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The testcontainers broker: one KRaft node (broker and controller) from
// an image that understands the apache/kafka image's environment
// (KAFKA_<PROPERTY> variables, CLUSTER_ID), started as a generic container
// on the host network. Host networking needs no port mapping, so the
// broker can advertise the very address clients dial (127.0.0.1 and two
// free ports), and it works on engines without a bridge network (dockerd
// --bridge none, as scripts/docker-ci.sh runs it). It needs a Linux engine
// (or Docker Desktop with host networking enabled).

// EnvRyukDisabled is testcontainers' own switch for its reaper container.
const EnvRyukDisabled = "TESTCONTAINERS_RYUK_DISABLED"

// containerStartTimeout bounds pulling, starting and waiting for the broker.
const containerStartTimeout = 5 * time.Minute

// kafkaContainerEnv is the environment of a single-node KRaft broker whose
// client listener is 127.0.0.1:port and controller 127.0.0.1:ctrl, with the
// settings scripts/kafka.sh gives its broker.
func kafkaContainerEnv(port, ctrl int) map[string]string {
	client := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	controller := net.JoinHostPort("127.0.0.1", strconv.Itoa(ctrl))
	return map[string]string{
		"KAFKA_NODE_ID":                                  "1",
		"KAFKA_PROCESS_ROLES":                            "broker,controller",
		"KAFKA_LISTENERS":                                "PLAINTEXT://" + client + ",CONTROLLER://" + controller,
		"KAFKA_ADVERTISED_LISTENERS":                     "PLAINTEXT://" + client,
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
		"KAFKA_INTER_BROKER_LISTENER_NAME":               "PLAINTEXT",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@" + controller,
		"KAFKA_NUM_PARTITIONS":                           "3",
		"KAFKA_AUTO_CREATE_TOPICS_ENABLE":                "true",
		"KAFKA_DEFAULT_REPLICATION_FACTOR":               "1",
		"KAFKA_MIN_INSYNC_REPLICAS":                      "1",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
		"KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS":             "10",
		"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
		"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
		"KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS":     "10",
		"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
		"KAFKA_LOG_DIRS":                                 "/tmp/kraft-combined-logs",
		"KAFKA_HEAP_OPTS":                                "-Xms256m -Xmx512m",
		"CLUSTER_ID":                                     "cHVsbHNjaGVkLWl0LWthZmth",
	}
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// brokerReady is the container's wait strategy: it succeeds once a
// metadata request to seeds lists a broker, and fails at once, with the
// log tail, if the container stops.
type brokerReady struct{ seeds []string }

func (b brokerReady) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last error
	for {
		st, err := target.State(ctx)
		if err != nil {
			return fmt.Errorf("container state: %w", err)
		}
		if !st.Running {
			return fmt.Errorf("container %s (exit code %d) before %v answered; log tail:\n%s",
				st.Status, st.ExitCode, b.seeds, logTail(ctx, target, 30))
		}
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		md, err := adm.BrokerMetadata(actx)
		cancel()
		if err == nil && len(md.Brokers) > 0 {
			return nil
		}
		if err == nil {
			err = errors.New("metadata lists no brokers")
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v did not answer: %v (last: %v); log tail:\n%s",
				b.seeds, ctx.Err(), last, logTail(context.Background(), target, 30))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// logTail returns the last n lines of the container's log.
func logTail(ctx context.Context, target wait.StrategyTarget, n int) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := target.Logs(ctx)
	if err != nil {
		return "(logs: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 4<<20))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runContainer starts a broker from image and returns it with its seeds.
// A container that was created is returned even with an error, so the
// caller can terminate it.
func runContainer(image string) (testcontainers.Container, []string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, nil, fmt.Errorf("free ports: %w", err)
	}
	seeds := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	ctx, cancel := context.WithTimeout(context.Background(), containerStartTimeout)
	defer cancel()
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithEnv(kafkaContainerEnv(ports[0], ports[1])),
		testcontainers.WithLabels(map[string]string{"io.github.pullsched.it": "kafka"}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.NetworkMode = network.NetworkHost
			hc.PortBindings = nil
		}),
		// testcontainers attaches a container to its default network
		// (creating "reaper_default" where there is no "bridge"); a
		// host-network container can be on no other.
		testcontainers.WithEndpointSettingsModifier(func(s map[string]*network.EndpointSettings) {
			clear(s)
		}),
		testcontainers.WithWaitStrategyAndDeadline(containerStartTimeout, brokerReady{seeds: seeds}),
	)
	if err != nil {
		var ctr testcontainers.Container
		if c != nil {
			ctr = c
		}
		return ctr, nil, fmt.Errorf("start %s on the host network at %v: %w", image, seeds, err)
	}
	return c, seeds, nil
}

// kafkaImage is the image the testcontainers broker runs.
func kafkaImage() string {
	if v := strings.TrimSpace(os.Getenv(EnvKafkaImage)); v != "" {
		return v
	}
	return DefaultKafkaImage
}

// decideRyuk leaves testcontainers' reaper (ryuk) on where it can run and
// turns it off, saying why, where it cannot: when its image is neither in
// the engine nor pullable (no registry), a reaper that never starts would
// fail every container. The harness terminates its container itself either
// way. It must run before testcontainers reads its configuration (the
// first container); a value of EnvRyukDisabled set by the user is kept.
func decideRyuk(ctx context.Context) string {
	if v, ok := os.LookupEnv(EnvRyukDisabled); ok {
		return fmt.Sprintf("ryuk: %s=%s (set by the environment)", EnvRyukDisabled, v)
	}
	image := testcontainers.ReaperDefaultImage
	if err := ensureImage(ctx, image); err != nil {
		_ = os.Setenv(EnvRyukDisabled, "true")
		return fmt.Sprintf("ryuk off: its image %s cannot be had (%v); the harness terminates its container itself", image, err)
	}
	return "ryuk on (" + image + ")"
}

// ensureImage succeeds if the engine has image or can pull it within ctx.
func ensureImage(ctx context.Context, image string) error {
	code, _, err := dockerAPI(ctx, http.MethodGet, "/images/"+url.PathEscape(image)+"/json", nil)
	if err != nil {
		return err
	}
	if code == http.StatusOK {
		return nil
	}
	name, tag := image, "latest"
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	q := url.Values{"fromImage": {name}, "tag": {tag}}
	code, body, err := dockerAPI(ctx, http.MethodPost, "/images/create?"+q.Encode(), nil)
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("pull: status %d: %s", code, firstLine(body))
	}
	// A pull answers 200 and reports failure in its JSON stream.
	dec := json.NewDecoder(strings.NewReader(string(body)))
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			break
		}
		if m.Error != "" {
			return fmt.Errorf("pull: %s", m.Error)
		}
	}
	return nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// dockerAPI sends one request to the engine named by DOCKER_HOST (or at a
// usual socket path) and returns the status and body (at most 1 MiB).
func dockerAPI(ctx context.Context, method, path string, body io.Reader) (int, []byte, error) {
	netw, addr, err := dockerAddr()
	if err != nil {
		return 0, nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, netw, addr)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, body)
	if err != nil {
		return 0, nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on %s %s: %w", method, path, netw, addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, b, err
	}
	return resp.StatusCode, b, nil
}
