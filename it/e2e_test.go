package it

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/cluster"
	"github.com/pullsched/pullsched/controllerbridge"
	"github.com/pullsched/pullsched/invokerbridge"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/workersim"
)

const adminToken = "it-token"

// devCluster starts the whole system on the test's broker: a scheduler,
// the ingress, and simulated workers with their bridges.
func devCluster(t *testing.T, workers int, timeScale float64) (*cluster.Cluster, Env) {
	t.Helper()
	env := Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := cluster.Start(ctx, cluster.Config{
		Brokers:          env.Seeds,
		Topics:           topics.Config{Prefix: env.Prefix, Partitions: 4, Replication: 1},
		Workers:          workers,
		Sim:              workersim.Config{TimeScale: timeScale},
		ControllerListen: "127.0.0.1:0",
		AdminToken:       adminToken,
		Logger:           zerolog.Nop(),
	})
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return cl, env
}

type answer struct {
	status int
	worker string
	cold   string
	id     string
}

func run(t *testing.T, client *http.Client, base, fn string) answer {
	t.Helper()
	resp, err := client.Post(base+"/run/"+fn, "application/json", strings.NewReader(`{"n": 100}`))
	if err != nil {
		t.Errorf("POST %s: %v", fn, err)
		return answer{}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := answer{status: resp.StatusCode, worker: resp.Header.Get("X-Worker"), cold: resp.Header.Get("X-Cold-Start"), id: resp.Header.Get("X-Activation-Id")}
	if a.status != http.StatusOK {
		t.Errorf("POST %s: %d %s", fn, a.status, body)
	}
	return a
}

func adminWorkers(t *testing.T, base string) []controllerbridge.WorkerStatus {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/admin/workers", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /admin/workers: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Workers []controllerbridge.WorkerStatus `json:"workers"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("GET /admin/workers: %d", resp.StatusCode)
	}
	return out.Workers
}

// TestDevClusterEndToEnd: 1,000 requests over 40 functions from 20
// concurrent clients all succeed with their headers, cold starts fall after
// warm-up, and the admin API shows the workers' load.
func TestDevClusterEndToEnd(t *testing.T) {
	cl, _ := devCluster(t, 5, 0.2)
	base := cl.ControllerURL()
	client := &http.Client{Timeout: 60 * time.Second}

	const requests, clients, functions = 1000, 20, 40
	bases := []string{"linpack", "matmul", "pyaes", "float_operation", "chameleon", "dd", "gzip_compression", "json_dumps_loads"}
	answers := make([]answer, requests)
	var next atomic.Int64
	var maxInFlight atomic.Int64
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() { // watch the load through the admin API while it runs
		defer close(polled)
		for {
			select {
			case <-stopPoll:
				return
			case <-time.After(100 * time.Millisecond):
			}
			sum := 0
			for _, w := range adminWorkers(t, base) {
				sum += w.InFlight
			}
			if int64(sum) > maxInFlight.Load() {
				maxInFlight.Store(int64(sum))
			}
		}
	}()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= requests {
					return
				}
				fn := fmt.Sprintf("%s-%d", bases[i%8], (i/8)%(functions/8))
				answers[i] = run(t, client, base, fn)
			}
		}()
	}
	wg.Wait()
	close(stopPoll)
	<-polled

	ids := map[string]bool{}
	perWorker := map[string]int{}
	coldFirst, coldLast := 0, 0
	for i, a := range answers {
		if a.status != http.StatusOK || a.worker == "" || (a.cold != "0" && a.cold != "1") || a.id == "" {
			t.Fatalf("answer %d: %+v", i, a)
		}
		if ids[a.id] {
			t.Fatalf("activation id %s answered twice", a.id)
		}
		ids[a.id] = true
		perWorker[a.worker]++
		if a.cold == "1" {
			if i < 200 {
				coldFirst++
			} else if i >= requests-200 {
				coldLast++
			}
		}
	}
	t.Logf("cold starts: %d of the first 200, %d of the last 200; per worker %v; max in-flight seen %d",
		coldFirst, coldLast, perWorker, maxInFlight.Load())
	if coldLast >= coldFirst {
		t.Errorf("cold starts did not fall after warm-up: %d then %d", coldFirst, coldLast)
	}
	if len(perWorker) < 2 {
		t.Errorf("work went to %d worker(s)", len(perWorker))
	}
	ws := adminWorkers(t, base)
	if len(ws) != 5 {
		t.Fatalf("admin lists %d workers, want 5", len(ws))
	}
	for _, w := range ws {
		if w.Status != "in-rotation" || w.Capacity != 0 || w.LastSeen.IsZero() { // bridges advertise no limit by default
			t.Errorf("worker %+v", w)
		}
	}
	if maxInFlight.Load() == 0 {
		t.Error("the admin API never showed load in flight")
	}
}

// TestAddAndRemoveWorkerAtRuntime: a worker added through the admin API
// (served by a pool bridge) starts receiving work; once removed it gets none.
func TestAddAndRemoveWorkerAtRuntime(t *testing.T) {
	cl, env := devCluster(t, 2, 0.1)
	base := cl.ControllerURL()

	// A new worker with no sidecar, and a pool bridge for admin-added workers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := workersim.New(workersim.Config{TimeScale: 0.1, Advertise: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Serve(ctx, ln) }()
	pool, err := invokerbridge.New(invokerbridge.Config{
		Kafka: kafkaconn.Config{Brokers: env.Seeds}, Topics: topics.Config{Prefix: env.Prefix, Partitions: 4, Replication: 1},
		Listen: "127.0.0.1:0", ID: "pool", Pool: true, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	poolDone := make(chan error, 1)
	go func() { poolDone <- pool.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-poolDone
		<-simDone
	})
	<-pool.Ready()

	url := "http://" + ln.Addr().String()
	newID, _ := topics.WorkerIDFromURL(url)
	admin := func(path string) {
		req, _ := http.NewRequest(http.MethodPost, base+path+"?workers="+url, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	admin("/admin/workers/add")

	// Fresh functions are cold everywhere, so least connections spreads
	// them over every worker in rotation, the new one included.
	client := &http.Client{Timeout: 60 * time.Second}
	burst := func(round, n int) map[string]int {
		seen := map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := run(t, client, base, fmt.Sprintf("matmul-r%d-%d", round, i))
				mu.Lock()
				seen[a.worker]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return seen
	}
	got := false
	for round := 0; round < 30 && !got; round++ {
		got = burst(round, 12)[newID] > 0
		if !got {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !got {
		t.Fatalf("added worker %s never received work", newID)
	}

	admin("/admin/workers/remove")
	// Once the scheduler has seen the removal, nothing more goes there.
	clean := 0
	for round := 100; round < 160 && clean < 3; round++ {
		if burst(round, 12)[newID] == 0 {
			clean++
		} else {
			clean = 0
		}
	}
	if clean < 3 {
		t.Fatal("removed worker kept receiving work")
	}
	for _, w := range adminWorkers(t, base) {
		if w.ID == newID && w.State != topics.WorkerRemoved {
			t.Fatalf("removed worker listed as %+v", w)
		}
	}
}
