package controllerbridge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/httpserve"
	"github.com/pullsched/pullsched/topics"
)

// admin wraps an admin handler with the bearer-token check: no token
// configured → 503, no credentials → 401 with WWW-Authenticate, wrong token
// → 403.
func (c *Controller) admin(h httpserve.HandlerFunc) httpserve.HandlerFunc {
	want := sha256.Sum256([]byte(c.cfg.AdminToken))
	return func(w http.ResponseWriter, r *http.Request) error {
		if c.cfg.AdminToken == "" {
			return httpserve.Errorf(http.StatusServiceUnavailable, "admin API disabled: no token configured")
		}
		auth := r.Header.Get("Authorization")
		scheme, token, found := strings.Cut(auth, " ")
		if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return &httpserve.Error{Status: http.StatusUnauthorized, Msg: "admin API needs Authorization: Bearer <token>",
				Header: http.Header{"WWW-Authenticate": {`Bearer realm="pullsched"`}}}
		}
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return httpserve.Errorf(http.StatusForbidden, "wrong admin token")
		}
		return h(w, r)
	}
}

// workerArgs collects the workers parameters of an admin call, repeated or
// comma-separated, from the query or a form body.
func workerArgs(r *http.Request) ([]string, error) {
	if err := r.ParseForm(); err != nil {
		return nil, httpserve.Errorf(http.StatusBadRequest, "bad form: %v", err)
	}
	var out []string
	for _, v := range r.Form["workers"] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, httpserve.Errorf(http.StatusBadRequest, "no workers given: want ?workers=URL (repeated or comma-separated)")
	}
	return out, nil
}

// adminWorker is one worker named in an admin answer.
type adminWorker struct {
	ID  string `json:"id"`
	URL string `json:"url,omitempty"`
}

// handleAdd serves /admin/workers/add: each URL becomes an active, admin
// sourced worker record on the workers topic.
func (c *Controller) handleAdd(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return &httpserve.Error{Status: http.StatusMethodNotAllowed, Msg: "use GET or POST", Header: http.Header{"Allow": {"GET, POST"}}}
	}
	urls, err := workerArgs(r)
	if err != nil {
		return err
	}
	recs, err := c.addWorkers(r.Context(), urls)
	if err != nil {
		return err
	}
	out := make([]adminWorker, len(recs))
	for i, rec := range recs {
		out[i] = adminWorker{ID: rec.ID, URL: rec.URL}
		c.log.Info().Str("worker", rec.ID).Str("url", rec.URL).Msg("worker added")
	}
	httpserve.WriteJSON(w, http.StatusOK, map[string]any{"added": out})
	return nil
}

// AddWorkers adds workers by URL, as /admin/workers/add does: each becomes
// an active, admin-sourced record on the workers topic. The CLI uses it for
// the workers listed in a (Hiku-style) config. Call it once Ready.
func (c *Controller) AddWorkers(ctx context.Context, urls []string) error {
	_, err := c.addWorkers(ctx, urls)
	return err
}

func (c *Controller) addWorkers(ctx context.Context, urls []string) ([]*topics.Worker, error) {
	recs := make([]*topics.Worker, 0, len(urls))
	now := time.Now().UTC()
	for _, u := range urls {
		id, err := topics.WorkerIDFromURL(u)
		if err != nil {
			return nil, httpserve.Errorf(http.StatusBadRequest, "bad worker URL: %v", err)
		}
		recs = append(recs, &topics.Worker{ID: id, URL: strings.TrimRight(u, "/"), State: topics.WorkerActive,
			Source: topics.SourceAdmin, Healthy: true, At: now})
	}
	if err := c.publishWorkers(ctx, recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// handleRemove serves /admin/workers/remove: each worker, named by URL or by
// id, gets a removed record on the workers topic.
func (c *Controller) handleRemove(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return &httpserve.Error{Status: http.StatusMethodNotAllowed, Msg: "use GET or POST", Header: http.Header{"Allow": {"GET, POST"}}}
	}
	args, err := workerArgs(r)
	if err != nil {
		return err
	}
	recs := make([]*topics.Worker, 0, len(args))
	now := time.Now().UTC()
	for _, a := range args {
		id, u := a, ""
		if strings.Contains(a, "://") {
			if id, err = topics.WorkerIDFromURL(a); err != nil {
				return httpserve.Errorf(http.StatusBadRequest, "bad worker URL: %v", err)
			}
			u = strings.TrimRight(a, "/")
		} else if !topics.ValidID(a) {
			return httpserve.Errorf(http.StatusBadRequest, "bad worker %q: want a URL or a worker id", a)
		}
		if u == "" {
			u = c.view.url(id)
		}
		recs = append(recs, &topics.Worker{ID: id, URL: u, State: topics.WorkerRemoved, Source: topics.SourceAdmin, At: now})
	}
	if err := c.publishWorkers(r.Context(), recs); err != nil {
		return err
	}
	out := make([]adminWorker, len(recs))
	for i, rec := range recs {
		out[i] = adminWorker{ID: rec.ID, URL: rec.URL}
		c.log.Info().Str("worker", rec.ID).Msg("worker removed")
	}
	httpserve.WriteJSON(w, http.StatusOK, map[string]any{"removed": out})
	return nil
}

// publishWorkers writes worker records and waits for every acknowledgement.
func (c *Controller) publishWorkers(ctx context.Context, recs []*topics.Worker) error {
	deadline := time.Now().Add(c.cfg.PublishTimeout)
	for _, rec := range recs {
		if err, _ := c.publish(ctx, time.Until(deadline), c.names.Workers(), rec); err != nil {
			return &httpserve.Error{Status: http.StatusServiceUnavailable, Msg: "could not write worker " + rec.ID, Err: err}
		}
	}
	return nil
}

// workerView is the latest record of every worker, from the workers topic.
type workerView struct {
	mu       sync.Mutex
	workers  map[string]topics.Worker
	caughtUp bool
	bad      int64
}

func newWorkerView() *workerView { return &workerView{workers: map[string]topics.Worker{}} }

// apply folds one record of the workers topic into the view.
func (v *workerView) apply(r *kgo.Record) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r.Value == nil { // a tombstone: compaction will forget the worker
		delete(v.workers, string(r.Key))
		return nil
	}
	w, err := topics.DecodeWorker(r.Value)
	if err != nil {
		v.bad++
		return err
	}
	v.workers[w.ID] = *w
	return nil
}

func (v *workerView) setCaughtUp() {
	v.mu.Lock()
	v.caughtUp = true
	v.mu.Unlock()
}

func (v *workerView) url(id string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.workers[id].URL
}

// WorkerStatus is one worker as GET /admin/workers and /status show it.
type WorkerStatus struct {
	ID       string    `json:"id"`
	URL      string    `json:"url,omitempty"`
	State    string    `json:"state"`  // active, draining or removed, as last written
	Status   string    `json:"status"` // in-rotation, stale, unhealthy, draining or removed: what it means now
	Source   string    `json:"source,omitempty"`
	Bridge   string    `json:"bridge,omitempty"`
	Capacity int       `json:"capacity"`
	InFlight int       `json:"inflight"`
	Healthy  bool      `json:"healthy"`
	LastSeen time.Time `json:"last_heartbeat,omitzero"`
	AgeMs    int64     `json:"age_ms"`
}

// snapshot lists the workers by id, judged at now.
func (v *workerView) snapshot(now time.Time, hb time.Duration) ([]WorkerStatus, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]WorkerStatus, 0, len(v.workers))
	for _, w := range v.workers {
		s := WorkerStatus{ID: w.ID, URL: w.URL, State: w.State, Source: w.Source, Bridge: w.Bridge,
			Capacity: w.Capacity, InFlight: w.InFlight, Healthy: w.Healthy, LastSeen: w.At}
		if !w.At.IsZero() {
			s.AgeMs = now.Sub(w.At).Milliseconds()
		}
		switch {
		case w.State != topics.WorkerActive:
			s.Status = w.State
		case w.At.IsZero() || now.Sub(w.At) > hb:
			s.Status = "stale"
		case !w.Healthy:
			s.Status = "unhealthy"
		default:
			s.Status = "in-rotation"
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, v.caughtUp
}

// handleWorkers serves GET /admin/workers.
func (c *Controller) handleWorkers(w http.ResponseWriter, _ *http.Request) error {
	ws, caughtUp := c.view.snapshot(time.Now(), c.cfg.HeartbeatTimeout)
	httpserve.WriteJSON(w, http.StatusOK, map[string]any{"workers": ws, "caught_up": caughtUp})
	return nil
}

// followWorkers keeps the worker view current until ctx ends, restarting
// the reader after an error.
func (c *Controller) followWorkers(ctx context.Context) {
	cfg := consumer.ReaderConfig{Kafka: c.conn("-workers"), Topic: c.names.Workers(), Logger: c.log}
	for {
		err := consumer.Follow(ctx, cfg, func(r *kgo.Record) {
			if err := c.view.apply(r); err != nil {
				c.log.Warn().Err(err).Int64("offset", r.Offset).Msg("undecodable worker record ignored")
			}
		}, c.view.setCaughtUp)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn().Err(err).Msg("following the workers topic failed; retrying")
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// status is the JSON of GET /status.
type status struct {
	Controller  string         `json:"controller"`
	Ready       bool           `json:"ready"`
	Draining    bool           `json:"draining"`
	Uptime      string         `json:"uptime"`
	Results     string         `json:"results_topic"`
	ResultsSeen int64          `json:"results_seen"`
	Book        bookStats      `json:"requests"`
	Workers     map[string]int `json:"workers"` // counts by status
	CaughtUp    bool           `json:"workers_caught_up"`
	WorkerList  []WorkerStatus `json:"worker_list"`
	Healthy     bool           `json:"healthy"` // ready, and at least one worker in rotation
}

// handleStatus serves GET /status: the health of this controller and of the
// workers it sees.
func (c *Controller) handleStatus(w http.ResponseWriter, _ *http.Request) error {
	now := time.Now()
	ws, caughtUp := c.view.snapshot(now, c.cfg.HeartbeatTimeout)
	counts := map[string]int{}
	for _, s := range ws {
		counts[s.Status]++
	}
	ready := false
	select {
	case <-c.ready:
		ready = !c.draining.Load()
	default:
	}
	st := status{
		Controller: c.cfg.ID, Ready: ready, Draining: c.draining.Load(), Results: c.names.Results(c.cfg.ID),
		ResultsSeen: c.resultsSeen.Load(), Book: c.book.stats(), Workers: counts, CaughtUp: caughtUp, WorkerList: ws,
		Healthy: ready && counts["in-rotation"] > 0,
	}
	if !c.startedAt.IsZero() {
		st.Uptime = now.Sub(c.startedAt).Round(time.Second).String()
	}
	httpserve.WriteJSON(w, http.StatusOK, st)
	return nil
}
