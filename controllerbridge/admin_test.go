package controllerbridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/topics"
)

const bearer = "Bearer s3cret"

// workerRecords reads every record of the workers topic.
func workerRecords(t *testing.T, h *harness) []*topics.Worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*topics.Worker
	err := consumer.ReadRange(ctx, consumer.ReaderConfig{Kafka: kafkaconn.Config{Brokers: h.cfg.Kafka.Brokers}, Topic: h.cfg.Topics.Names().Workers()}, nil, time.Time{},
		func(r *kgo.Record) error {
			w, err := topics.DecodeWorker(r.Value)
			if err != nil {
				return err
			}
			if string(r.Key) != w.ID {
				t.Errorf("worker record keyed %q for id %q", r.Key, w.ID)
			}
			out = append(out, w)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// listWorkers calls GET /admin/workers.
func listWorkers(t *testing.T, h *harness) map[string]WorkerStatus {
	t.Helper()
	resp, body := call(t, "GET", h.base+"/admin/workers", bearer, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/workers: %d %s", resp.StatusCode, body)
	}
	var v struct {
		Workers []WorkerStatus `json:"workers"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]WorkerStatus{}
	for _, w := range v.Workers {
		out[w.ID] = w
	}
	return out
}

func TestAdminAuth(t *testing.T) {
	h := start(t, nil)
	paths := []string{"/admin/workers", "/admin/workers/add?workers=http://127.0.0.1:1", "/admin/workers/remove?workers=x"}
	for _, p := range paths {
		resp, body := call(t, "GET", h.base+p, "", "")
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s without token: %d WWW-Authenticate %q", p, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		jsonError(t, resp, body)
		resp, body = call(t, "GET", h.base+p, "Basic czNjcmV0", "")
		if resp.StatusCode != 401 {
			t.Errorf("%s with basic auth: %d", p, resp.StatusCode)
		}
		resp, body = call(t, "GET", h.base+p, "Bearer wrong", "")
		if resp.StatusCode != 403 {
			t.Errorf("%s with a wrong token: %d", p, resp.StatusCode)
		}
		jsonError(t, resp, body)
	}
	if ws := workerRecords(t, h); len(ws) != 0 {
		t.Errorf("refused admin calls wrote %d worker records", len(ws))
	}
	if resp, body := call(t, "GET", h.base+"/admin/workers", bearer, ""); resp.StatusCode != 200 {
		t.Errorf("with the token: %d %s", resp.StatusCode, body)
	}
}

func TestAdminDisabledWithoutToken(t *testing.T) {
	h := start(t, func(c *Config) { c.AdminToken = "" })
	resp, body := call(t, "GET", h.base+"/admin/workers", "Bearer ", "")
	if resp.StatusCode != 503 || !strings.Contains(jsonError(t, resp, body).Error, "admin API disabled") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

func TestAdminAddRemove(t *testing.T) {
	h := start(t, nil)
	q := url.Values{"workers": {"http://127.0.0.1:8081", "http://127.0.0.1:8082/, https://localhost:9000"}}
	resp, body := call(t, "POST", h.base+"/admin/workers/add?"+q.Encode(), bearer, "")
	if resp.StatusCode != 200 {
		t.Fatalf("add: %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, "POST", h.base+"/admin/workers/add", bearer, "")
	if resp.StatusCode != 400 || !strings.Contains(jsonError(t, resp, body).Error, "no workers given") {
		t.Errorf("add without workers: %d %s", resp.StatusCode, body)
	}
	// A form body works as well as the query.
	req, _ := http.NewRequest("POST", h.base+"/admin/workers/add", strings.NewReader("workers=http%3A%2F%2F127.0.0.1%3A8083"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", bearer)
	fresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	fresp.Body.Close()
	if fresp.StatusCode != 200 {
		t.Errorf("add by form: %d", fresp.StatusCode)
	}
	want := map[string]string{"127.0.0.1-8081": "http://127.0.0.1:8081", "127.0.0.1-8082": "http://127.0.0.1:8082",
		"localhost-9000": "https://localhost:9000", "127.0.0.1-8083": "http://127.0.0.1:8083"}
	ws := workerRecords(t, h)
	if len(ws) != 4 {
		t.Fatalf("%d worker records, want 4: %+v", len(ws), ws)
	}
	for _, w := range ws {
		if want[w.ID] != w.URL || w.State != topics.WorkerActive || w.Source != topics.SourceAdmin || w.At.IsZero() {
			t.Errorf("added record %+v", w)
		}
	}

	resp, body = call(t, "GET", h.base+"/admin/workers/remove?workers=http://127.0.0.1:8081&workers=127.0.0.1-8082", bearer, "")
	if resp.StatusCode != 200 {
		t.Fatalf("remove: %d %s", resp.StatusCode, body)
	}
	ws = workerRecords(t, h)
	if len(ws) != 6 {
		t.Fatalf("%d worker records after remove, want 6", len(ws))
	}
	for _, w := range ws[4:] {
		if w.State != topics.WorkerRemoved || (w.ID != "127.0.0.1-8081" && w.ID != "127.0.0.1-8082") {
			t.Errorf("removed record %+v", w)
		}
	}
	var view map[string]WorkerStatus
	eventually(t, "GET /admin/workers shows the removal", func() bool {
		view = listWorkers(t, h)
		return view["127.0.0.1-8082"].State == topics.WorkerRemoved && view["127.0.0.1-8081"].State == topics.WorkerRemoved
	})
	if w := view["localhost-9000"]; w.State != topics.WorkerActive || w.Source != topics.SourceAdmin || w.URL != "https://localhost:9000" {
		t.Errorf("localhost-9000: %+v", w)
	}
	if w := view["127.0.0.1-8082"]; w.Status != topics.WorkerRemoved || w.URL != "http://127.0.0.1:8082" {
		t.Errorf("removal by id lost the URL or status: %+v", w)
	}
}

func TestAdminBadURLs(t *testing.T) {
	h := start(t, nil)
	bad := []string{"ftp://127.0.0.1:21", "127.0.0.1:8081", "http://:8080", "http://u:p@127.0.0.1:1", "http://127.0.0.1:1/?q=1", "::"}
	for _, u := range bad {
		resp, body := call(t, "GET", h.base+"/admin/workers/add?workers="+url.QueryEscape("http://127.0.0.1:7000,"+u), bearer, "")
		if resp.StatusCode != 400 {
			t.Errorf("%q: %d %s", u, resp.StatusCode, body)
			continue
		}
		if e := jsonError(t, resp, body); !strings.Contains(e.Error, u) {
			t.Errorf("%q: error %q does not name the URL", u, e.Error)
		}
	}
	resp, body := call(t, "GET", h.base+"/admin/workers/remove?workers=a/b", bearer, "")
	if resp.StatusCode != 400 {
		t.Errorf("remove a/b: %d %s", resp.StatusCode, body)
	}
	resp, _ = call(t, "DELETE", h.base+"/admin/workers/add?workers=http://127.0.0.1:7000", bearer, "")
	if resp.StatusCode != 405 {
		t.Errorf("DELETE add: %d", resp.StatusCode)
	}
	if ws := workerRecords(t, h); len(ws) != 0 {
		t.Errorf("a refused add wrote %d records (the good URL in the batch too?)", len(ws))
	}
}

func TestAdminWorkersShowsHeartbeats(t *testing.T) {
	h := start(t, nil)
	n := h.cfg.Topics.Names()
	now := time.Now()
	recs := []*topics.Worker{
		{ID: "w-live", URL: "http://127.0.0.1:9101", State: topics.WorkerActive, Source: topics.SourceSidecar,
			Capacity: 4, InFlight: 2, Healthy: true, Bridge: "b1", At: now},
		{ID: "w-old", URL: "http://127.0.0.1:9102", State: topics.WorkerActive, Source: topics.SourceSidecar,
			Capacity: 4, Healthy: true, At: now.Add(-time.Hour)},
		{ID: "w-sick", State: topics.WorkerActive, Source: topics.SourceSidecar, Capacity: 1, At: now},
		{ID: "w-bye", State: topics.WorkerDraining, Source: topics.SourceSidecar, At: now},
	}
	for _, r := range recs {
		if err := h.prod.Publish(context.Background(), n.Workers(), r); err != nil {
			t.Fatal(err)
		}
	}
	var view map[string]WorkerStatus
	eventually(t, "all four workers listed", func() bool {
		view = listWorkers(t, h)
		return len(view) == 4
	})
	live := view["w-live"]
	if live.Status != "in-rotation" || live.Capacity != 4 || live.InFlight != 2 || live.Bridge != "b1" || !live.Healthy ||
		live.LastSeen.IsZero() || live.URL != "http://127.0.0.1:9101" {
		t.Errorf("w-live: %+v", live)
	}
	if s := view["w-old"]; s.Status != "stale" || s.AgeMs < 3_000_000 {
		t.Errorf("w-old: %+v", s)
	}
	if s := view["w-sick"].Status; s != "unhealthy" {
		t.Errorf("w-sick status %q", s)
	}
	if s := view["w-bye"].Status; s != topics.WorkerDraining {
		t.Errorf("w-bye status %q", s)
	}

	resp, body := call(t, "GET", h.base+"/status", "", "")
	var st status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/status: %d %s %v", resp.StatusCode, body, err)
	}
	if st.Controller != "ctl" || !st.Ready || st.Draining || !st.Healthy || !st.CaughtUp || st.Results != n.Results("ctl") {
		t.Errorf("status %+v", st)
	}
	if st.Workers["in-rotation"] != 1 || st.Workers["stale"] != 1 || st.Workers["unhealthy"] != 1 || st.Workers["draining"] != 1 {
		t.Errorf("status worker counts %v", st.Workers)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	h := start(t, nil)
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, body := call(t, "GET", h.base+p, "", ""); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	resp, body := call(t, "POST", h.base+"/run/bad$name", "", "")
	if resp.StatusCode != 400 {
		t.Fatalf("%d", resp.StatusCode)
	}
	resp, body = call(t, "GET", h.base+"/metrics", "", "")
	for _, m := range []string{`pullsched_controller_requests_total{code="400"} 1`, "pullsched_controller_waiting_requests 0",
		"pullsched_controller_request_seconds_bucket"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
}
