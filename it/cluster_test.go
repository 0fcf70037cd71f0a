package it

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/cluster"
	"github.com/pullsched/pullsched/controllerbridge"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

// Environment variables of the three-broker test.
const (
	// EnvCluster names the brokers of a Kafka cluster of three (or more)
	// brokers, comma-separated, e.g. what `scripts/kafka.sh cluster start`
	// prints. Without it TestClusterBrokerKilledUnderLoad does not run.
	EnvCluster = "PULLSCHED_IT_CLUSTER"
	// EnvClusterCtl is the command that kills and restarts a broker: the
	// test runs "<command> kill <node id>" and "<command> restart <node
	// id>". Default "../scripts/kafka.sh cluster" (the test runs in it/),
	// whose node numbers are the brokers' node ids.
	EnvClusterCtl = "PULLSCHED_IT_CLUSTER_CTL"
	// EnvClusterLog, if set, is a file the chain's parts write their JSON
	// logs to (debug level), to see where the time after a kill goes.
	// Default: no logs.
	EnvClusterLog = "PULLSCHED_IT_CLUSTER_LOG"
)

// clusterSeeds returns the brokers EnvCluster names, or skips the test
// saying why it did not run.
func clusterSeeds(t *testing.T) []string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(EnvCluster))
	if v == "" {
		t.Skipf("not run: %s is not set; it names the brokers of a three-broker Kafka cluster, e.g. "+
			"`scripts/kafka.sh cluster start` then %s=127.0.0.1:29292,127.0.0.1:29293,127.0.0.1:29294 "+
			"(scripts/ci-kafka-extra.sh does both)", EnvCluster, EnvCluster)
	}
	var seeds []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// clusterCtl runs "<EnvClusterCtl> verb node" and fails the test if it fails.
func clusterCtl(t *testing.T, verb string, node int32) {
	t.Helper()
	ctl := strings.Fields(os.Getenv(EnvClusterCtl))
	if len(ctl) == 0 {
		ctl = []string{"../scripts/kafka.sh", "cluster"}
	}
	args := append(ctl[1:], verb, strconv.Itoa(int(node)))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctl[0], args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", ctl[0], strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", ctl[0], strings.Join(args, " "), strings.TrimSpace(string(out)))
}

// call is one request of the load: sent with an Idempotency-Key, retried
// with the same key while the answer is 503, 429 or 504, until it is
// answered (a retry with the key publishes nothing new: it waits for the
// same activation's result).
type call struct {
	fn       string
	start    time.Time
	end      time.Time
	attempts int
	status   int    // the last answer's status; 0 if none came
	unknown  int    // 503s with X-Outcome: unknown among the attempts
	timeouts int    // 504s among the attempts
	id       string // X-Activation-Id of the last answer
	err      error  // the last transport error
}

// disrupted says whether c needed a retry, failed, or took longer than slow.
func (c call) disrupted(slow time.Duration) bool {
	return c.attempts > 1 || c.status != http.StatusOK || c.end.Sub(c.start) > slow
}

// doCall sends POST /run/<fn> with key until it gets an answer other than
// 503, 429 or 504, or until giveUp.
func doCall(client *http.Client, base, fn, key string, giveUp time.Time) call {
	c := call{fn: fn, start: time.Now()}
	for {
		c.attempts++
		req, _ := http.NewRequest(http.MethodPost, base+"/run/"+fn+"?timeout=30s", strings.NewReader(`{"n": 100}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(controllerbridge.HeaderIdempotencyKey, key)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.status, c.err = resp.StatusCode, nil
			c.id = resp.Header.Get(controllerbridge.HeaderActivationID)
			if resp.Header.Get(controllerbridge.HeaderOutcome) == "unknown" {
				c.unknown++
			}
			if c.status == http.StatusGatewayTimeout {
				c.timeouts++
			}
		} else {
			c.status, c.err = 0, err
		}
		retry := err != nil || c.status == http.StatusServiceUnavailable || c.status == http.StatusTooManyRequests ||
			c.status == http.StatusGatewayTimeout
		if !retry || time.Now().After(giveUp) {
			c.end = time.Now()
			return c
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestClusterBrokerKilledUnderLoad: with requests flowing through the whole
// chain on a three-broker cluster (replication factor 3,
// min.insync.replicas 2), the broker that coordinates the scheduler's group
// is killed with SIGKILL and, ten seconds later, started again. Every
// request (each with its own Idempotency-Key, retried with it on 503, 429
// and 504, as the README allows) must be answered with its result within
// two minutes: none lost, none answered for another. Duplicate executions and the parts'
// duplicate counters are reported, and so is how long the disruption
// lasted after the kill and after the restart.
func TestClusterBrokerKilledUnderLoad(t *testing.T) {
	seeds := clusterSeeds(t)
	env := Env{Seeds: seeds, Kind: KindExternal, Prefix: TopicPrefix(t)}
	if err := reachable(seeds, 30*time.Second); err != nil {
		t.Fatalf("%s=%v does not answer: %v", EnvCluster, seeds, err)
	}
	t.Logf("cluster: %s", Describe(seeds))
	adm := env.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	md, err := adm.BrokerMetadata(ctx)
	cancel()
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(md.Brokers) < 3 {
		t.Fatalf("%s names a cluster of %d broker(s); the test needs three", EnvCluster, len(md.Brokers))
	}

	logger := zerolog.Nop()
	if path := os.Getenv(EnvClusterLog); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatalf("%s: %v", EnvClusterLog, err)
		}
		t.Cleanup(func() { f.Close() })
		logger = zerolog.New(f).Level(zerolog.DebugLevel).With().Timestamp().Logger()
		t.Logf("the parts' logs go to %s", path)
	}

	tcfg := topics.Config{Prefix: env.Prefix, Partitions: 4, Replication: 3}
	ctx, cancel = context.WithTimeout(context.Background(), 90*time.Second)
	cl, err := cluster.Start(ctx, cluster.Config{
		Brokers:          seeds,
		Topics:           tcfg,
		Workers:          3,
		Sim:              workersim.Config{TimeScale: 0.1},
		ControllerListen: "127.0.0.1:0",
		AdminToken:       adminToken,
		Logger:           logger,
	})
	cancel()
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := cl.Stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	checkReplication(t, adm, tcfg.Names().Arrivals(), 3)

	// The victim: the coordinator of the scheduler's group (losing it moves
	// the group and the partitions it leads at once), else the leader of
	// arrivals partition 0.
	victim := int32(-1)
	group := tcfg.Names().Prefix + "scheduler"
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	if co, ok := adm.FindGroupCoordinators(ctx, group)[group]; ok && co.Err == nil {
		victim = co.NodeID
		t.Logf("victim: node %d, coordinator of group %s", victim, group)
	} else {
		tm, err := adm.Metadata(ctx, tcfg.Names().Arrivals())
		if err != nil {
			t.Fatalf("metadata of arrivals: %v", err)
		}
		victim = tm.Topics[tcfg.Names().Arrivals()].Partitions[0].Leader
		t.Logf("victim: node %d, leader of %s/0 (no coordinator for %s: %v)", victim, tcfg.Names().Arrivals(), group, co.Err)
	}
	cancel()

	// Load: clients in a loop, each request a fresh key, 20 ms apart.
	const clients = 6
	base := cl.ControllerURL()
	client := &http.Client{Timeout: 45 * time.Second}
	fns := []string{"matmul", "pyaes", "linpack", "float_operation", "dd", "json_dumps_loads"}
	var (
		mu    sync.Mutex
		calls []call
		wg    sync.WaitGroup
	)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				fn := fmt.Sprintf("%s-%d", fns[(c+i)%len(fns)], i%3)
				key := fmt.Sprintf("%sc%d-%d", env.Prefix, c, i)
				r := doCall(client, base, fn, key, time.Now().Add(2*time.Minute))
				mu.Lock()
				calls = append(calls, r)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	time.Sleep(5 * time.Second) // warm up: sandboxes, group settled
	killAt := time.Now()
	logger.Warn().Int32("node", victim).Msg("it: killing the broker")
	clusterCtl(t, "kill", victim)
	time.Sleep(10 * time.Second)
	restartAt := time.Now()
	clusterCtl(t, "restart", victim)
	restartedAt := time.Now()
	time.Sleep(5 * time.Second)
	stopLoad()
	wg.Wait()
	end := time.Now()

	// Every request answered with its result, and each by its own activation.
	ids := map[string]string{}
	var retried, unknown, timeouts, failed int
	for _, c := range calls {
		if c.attempts > 1 {
			retried++
		}
		unknown += c.unknown
		timeouts += c.timeouts
		if c.status != http.StatusOK || c.id == "" {
			failed++
			if failed <= 10 {
				t.Errorf("request for %s at %s (+%s after the kill): status %d after %d attempt(s), err %v",
					c.fn, c.start.Format("15:04:05.000"), c.start.Sub(killAt).Round(time.Millisecond), c.status, c.attempts, c.err)
			}
			continue
		}
		if other, dup := ids[c.id]; dup {
			t.Errorf("activation %s answered two requests (%s and %s)", c.id, other, c.fn)
		}
		ids[c.id] = c.fn
	}
	if failed > 0 {
		t.Errorf("%d of %d requests not answered with their result", failed, len(calls))
	}
	if len(calls) < 100 {
		t.Errorf("only %d requests in %s: the load did not run", len(calls), end.Sub(killAt.Add(-5*time.Second)))
	}

	// Duplicates: executions beyond one per answered request, and what the
	// parts counted as duplicates.
	var invocations int64
	for _, s := range cl.Sims() {
		invocations += s.Stats().Invocations
	}
	answered := int64(len(ids))
	if invocations < answered {
		t.Errorf("workers ran %d invocations for %d answered requests", invocations, answered)
	}
	schedDup := scrapeSum(t, cl.SchedulerURL()+"/metrics", "_duplicates_total")
	bridgeDup := 0.0
	for _, w := range cl.Workers() {
		bridgeDup += scrapeSum(t, w.BridgeURL+"/metrics", "_duplicates_total")
	}

	// Disruption: a request that needed a retry or took more than slow.
	var warm []time.Duration
	for _, c := range calls {
		if c.end.Before(killAt) && c.start.After(killAt.Add(-3*time.Second)) && c.status == http.StatusOK {
			warm = append(warm, c.end.Sub(c.start))
		}
	}
	slices.Sort(warm)
	slow := 500 * time.Millisecond
	if len(warm) > 0 {
		slow = max(slow, 4*warm[len(warm)*99/100])
	}
	killRec, killWorst, killHit := disruption(calls, killAt, time.Time{}, restartAt, slow)
	restRec, restWorst, restHit := disruption(calls, restartAt, restartAt, end, slow)
	shown := 0
	for _, c := range calls {
		if c.end.After(killAt) && c.disrupted(slow) && shown < 12 {
			shown++
			t.Logf("disrupted: %s sent at kill%+.3fs, answered at kill%+.3fs: %d attempt(s), status %d",
				c.fn, c.start.Sub(killAt).Seconds(), c.end.Sub(killAt).Seconds(), c.attempts, c.status)
		}
	}
	t.Logf("load: %d requests by %d clients, %d answered, %d retried (%d 503s with X-Outcome: unknown, %d 504s), %d failed",
		len(calls), clients, answered, retried, unknown, timeouts, failed)
	t.Logf("duplicates: %d worker invocation(s) beyond one per answered request; scheduler duplicates_total %.0f, bridges duplicates_total %.0f",
		invocations-answered, schedDup, bridgeDup)
	t.Logf("recovery after SIGKILL of node %d: %s (until the last disrupted request sent before the restart was answered), "+
		"%d request(s) disrupted, longest %s; disrupted = retried, failed or slower than %s (4x the p99 of the 3s before, at least 500ms)",
		victim, killRec, killHit, killWorst, slow.Round(time.Millisecond))
	t.Logf("restart of node %d took %s; of the requests sent after it began, %d disrupted, the last answered %s after it began, longest %s",
		victim, restartedAt.Sub(restartAt).Round(time.Millisecond), restHit, restRec, restWorst)
	stop()
}

// disruption looks at the calls started in [lo, hi) and answered after
// from: how long after from the last disrupted one was answered, how many
// there were, and the longest of them.
func disruption(calls []call, from, lo, hi time.Time, slow time.Duration) (recovery time.Duration, worst time.Duration, n int) {
	for _, c := range calls {
		if !c.end.After(from) || c.start.Before(lo) || !c.start.Before(hi) || !c.disrupted(slow) {
			continue
		}
		n++
		recovery = max(recovery, c.end.Sub(from))
		worst = max(worst, c.end.Sub(c.start))
	}
	return recovery.Round(time.Millisecond), worst.Round(time.Millisecond), n
}

// checkReplication fails the test unless every partition of topic has rf
// replicas.
func checkReplication(t *testing.T, adm *kadm.Client, topic string, rf int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		t.Fatalf("topic %s: %+v", topic, td)
	}
	for _, p := range td.Partitions {
		if len(p.Replicas) != rf {
			t.Fatalf("%s/%d has replicas %v, want %d", topic, p.Partition, p.Replicas, rf)
		}
	}
}

// scrapeSum sums the samples of every metric whose name ends with suffix
// (and is not a predecessor_ sub-count) on a Prometheus text page.
func scrapeSum(t *testing.T, url, suffix string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			_, rest, _ = strings.Cut(line[strings.IndexByte(line, '}')+1:], " ")
		}
		if !strings.HasSuffix(name, suffix) || strings.Contains(name, "predecessor_") {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}
