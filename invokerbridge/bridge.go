package invokerbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/httpserve"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
	"github.com/pullsched/pullsched/tracing"
)

// ErrAlreadyRun is returned by Run when called a second time.
var ErrAlreadyRun = errors.New("invokerbridge: Run called twice")

// Bridge is an invoker bridge, sidecar or pool. Create it with New and run
// it with Run.
type Bridge struct {
	cfg    Config
	log    zerolog.Logger
	names  topics.Names
	srv    *httpserve.Server // nil without Listen
	met    *metrics
	client *http.Client
	dedupe *dedupe
	prod   *producer.Producer // set by Run
	// hb writes the worker records (heartbeats) on a client of their own,
	// so that under load they do not queue behind completions and
	// results: a heartbeat late by more than the schedulers' timeout takes
	// a live worker out of rotation. Set by Run.
	hb *producer.Producer

	started   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex
	runners map[string]*runner        // by worker id
	admin   map[string]string         // pool: last admin decision per worker id (active or removed)
	wg      sync.WaitGroup            // pool runners
	retired consumer.DeadLetterCounts // of runners' consumers that are gone
}

// New validates cfg and prepares a bridge: it binds the HTTP listener (so
// Addr is known at once) but starts no goroutine and makes no connection.
func New(cfg Config) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	b := &Bridge{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("part", "invoker").Str("bridge", cfg.ID).Logger(),
		names:   cfg.Topics.Names(),
		dedupe:  newDedupe(cfg.DedupeSize),
		ready:   make(chan struct{}),
		runners: map[string]*runner{},
		admin:   map[string]string{},
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 nil, // workers are on the cluster network, never behind a proxy
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          0,
			MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	// With tracing on, calls made under an invoke span carry its context
	// to the worker in a client span of their own.
	b.client = &http.Client{Transport: tracing.Transport(tr, tracing.SpanWorkerCall)}
	var reg prometheus.Registerer = prometheus.NewRegistry()
	if cfg.Listen != "" {
		srv, err := httpserve.New(httpserve.Config{Addr: cfg.Listen, Logger: b.log})
		if err != nil {
			return nil, fmt.Errorf("invokerbridge: %w", err)
		}
		b.srv = srv
		reg = b.srv.Registry()
		b.srv.SetReadyCheck(b.progress)
		b.srv.Mux().Handle("POST /destroySandbox/{fn...}", httpserve.Handle(b.log, b.serveDestroySandbox))
	}
	met, err := newMetrics(reg, b)
	if err != nil {
		if b.srv != nil {
			_ = b.srv.Close()
		}
		return nil, fmt.Errorf("invokerbridge: metrics: %w", err)
	}
	b.met = met
	return b, nil
}

// Addr is the bound HTTP address, or "" without Listen.
func (b *Bridge) Addr() string {
	if b.srv == nil {
		return ""
	}
	return b.srv.Addr()
}

// Registry is the Prometheus registry /metrics serves (the bridge's
// metrics, registered by New, and the Go and process collectors), or nil
// without Listen.
func (b *Bridge) Registry() *prometheus.Registry {
	if b.srv == nil {
		return nil
	}
	return b.srv.Registry()
}

// Ready is closed once the bridge serves: in sidecar mode when the worker is
// registered and the assignment consumer holds its partition; in pool mode
// when the workers topic has been read to its end. The HTTP server is bound
// from New on.
func (b *Bridge) Ready() <-chan struct{} { return b.ready }

func (b *Bridge) setReady() {
	b.readyOnce.Do(func() {
		close(b.ready)
		if b.srv != nil {
			b.srv.SetReady(true)
		}
		b.log.Info().Str("addr", b.Addr()).Bool("pool", b.cfg.Pool).Msg("invoker bridge ready")
	})
}

// Run starts the bridge and blocks until ctx ends, then shuts down in
// order: stop taking assignments and mark the workers draining, finish the
// calls in flight (for at most DrainTimeout), commit and leave the groups,
// write the last worker records, stop the HTTP server, flush and close the
// producer. It returns nil on a clean stop.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	b.cfg.Kafka.LogSecurity(b.log)
	prod, err := producer.New(producer.Config{Kafka: b.conn(""), Logger: b.log})
	if err != nil {
		if b.srv != nil {
			_ = b.srv.Close()
		}
		return fmt.Errorf("invokerbridge: %w", err)
	}
	b.prod = prod
	defer prod.Close(10 * time.Second)
	hb, err := producer.New(producer.Config{Kafka: b.conn("-heartbeat"), Logger: b.log})
	if err != nil {
		if b.srv != nil {
			_ = b.srv.Close()
		}
		return fmt.Errorf("invokerbridge: %w", err)
	}
	b.hb = hb
	defer hb.Close(5 * time.Second)

	if _, err := topics.EnsureAll(ctx, kadm.NewClient(prod.Client()), b.cfg.Topics); err != nil {
		if b.srv != nil {
			_ = b.srv.Close()
		}
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("invokerbridge: topics: %w", kafkaconn.Explain(b.cfg.Kafka, err))
	}

	httpCtx, httpCancel := context.WithCancel(context.Background())
	defer httpCancel()
	httpDone := make(chan error, 1)
	if b.srv != nil {
		go func() { httpDone <- b.srv.Serve(httpCtx) }()
	} else {
		httpDone <- nil
	}

	var runErr error
	if b.cfg.Pool {
		runErr = b.runPool(ctx, httpDone)
	} else {
		runErr = b.runSidecar(ctx, httpDone)
	}

	if b.srv != nil {
		b.srv.SetReady(false)
	}
	httpCancel()
	if err := <-httpDone; err != nil && runErr == nil {
		runErr = fmt.Errorf("invokerbridge: http: %w", err)
	}
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := prod.Flush(fctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("invokerbridge: flush: %w", err)
	}
	b.log.Info().Err(runErr).Msg("invoker bridge stopped")
	return runErr
}

// runSidecar serves the configured worker until ctx ends or the HTTP
// server fails.
func (b *Bridge) runSidecar(ctx context.Context, httpDone chan error) error {
	w := worker{id: b.cfg.WorkerID, url: strings.TrimRight(b.cfg.WorkerURL, "/"), hostport: b.cfg.Advertise,
		source: topics.SourceSidecar}
	r := newRunner(b, w)
	b.mu.Lock()
	b.runners[w.id] = r
	b.mu.Unlock()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.run(rctx, false) }()
	// Ready once registered and holding the partition, in either order.
	stopped := func() bool {
		select {
		case err := <-errc:
			errc <- err
		case err := <-httpDone:
			httpDone <- err
		case <-ctx.Done():
		default:
			return false
		}
		return true
	}
wait:
	for _, ch := range []chan struct{}{r.registered, r.assigned} {
		select {
		case <-ch:
		case err := <-errc:
			errc <- err
			break wait
		case err := <-httpDone:
			httpDone <- err
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	if !stopped() {
		b.setReady()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		errc <- err
	case err := <-httpDone:
		httpDone <- err
	}
	cancel()
	return <-errc
}

// runPool follows the workers topic and serves every admin-added worker
// until ctx ends, then stops every runner and waits for them.
func (b *Bridge) runPool(ctx context.Context, httpDone chan error) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followErr := make(chan error, 1)
	go func() {
		followErr <- consumer.Follow(rctx, consumer.ReaderConfig{
			Kafka: b.conn("-workers"), Topic: b.names.Workers(), Logger: b.log,
		}, func(rec *kgo.Record) { b.workerRecord(rctx, rec) }, b.setReady)
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-followErr:
		followErr <- err
		if err != nil {
			err = fmt.Errorf("invokerbridge: follow %s: %w", b.names.Workers(), err)
		}
	case e := <-httpDone:
		httpDone <- e
	}
	cancel()
	<-followErr
	b.wg.Wait()
	return err
}

// workerRecord applies one record of the workers topic to the pool.
//
// Only workers the admin API added are served. A record without a bridge
// is the admin API's word and decides (active: serve; removed: stop). A
// record a bridge wrote for an admin-added worker (a heartbeat) only
// matters for a worker no admin record was seen for (compaction may have
// dropped it): then a live heartbeat means it is still a member.
func (b *Bridge) workerRecord(ctx context.Context, rec *kgo.Record) {
	id := string(rec.Key)
	if rec.Value == nil { // tombstone: forget the worker
		b.stopRunner(id, topics.WorkerRemoved)
		b.mu.Lock()
		b.admin[id] = topics.WorkerRemoved
		b.mu.Unlock()
		return
	}
	w, err := topics.DecodeWorker(rec.Value)
	if err != nil {
		b.log.Warn().Err(err).Int64("offset", rec.Offset).Msg("undecodable worker record ignored")
		return
	}
	if w.Source != topics.SourceAdmin {
		return
	}
	b.mu.Lock()
	known := b.admin[w.ID]
	b.mu.Unlock()
	adopt := false
	switch {
	case w.Bridge == "" && w.State == topics.WorkerActive:
		adopt = true
	case w.Bridge == "" && w.State == topics.WorkerRemoved:
		b.mu.Lock()
		b.admin[w.ID] = topics.WorkerRemoved
		b.mu.Unlock()
		b.stopRunner(w.ID, topics.WorkerRemoved)
		return
	case w.Bridge != "" && known == "" && w.State != topics.WorkerRemoved:
		adopt = true
	case w.Bridge != "" && known == "" && w.State == topics.WorkerRemoved:
		b.mu.Lock()
		b.admin[w.ID] = topics.WorkerRemoved
		b.mu.Unlock()
		return
	}
	if !adopt {
		return
	}
	hp, err := topics.WorkerHostPort(w.URL)
	if err != nil {
		b.log.Warn().Err(err).Str("worker", w.ID).Msg("admin-added worker has no usable url; not served")
		return
	}
	b.mu.Lock()
	b.admin[w.ID] = topics.WorkerActive
	b.mu.Unlock()
	b.startRunner(ctx, worker{id: w.ID, url: strings.TrimRight(w.URL, "/"), hostport: hp, source: topics.SourceAdmin})
}

// startRunner serves w unless a runner already does; a runner of the same
// worker that is still draining is waited for first.
func (b *Bridge) startRunner(ctx context.Context, w worker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := b.runners[w.id]
	if prev != nil {
		prev.mu.Lock()
		stopping := prev.cancelled || prev.cancel == nil
		prev.mu.Unlock()
		if !stopping {
			return
		}
	}
	r := newRunner(b, w)
	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	b.runners[w.id] = r
	b.log.Info().Str("worker", w.id).Str("url", w.url).Msg("serving admin-added worker")
	b.wg.Go(func() {
		defer cancel()
		if prev != nil {
			select {
			case <-prev.done:
			case <-rctx.Done():
				return
			}
		}
		if err := r.run(rctx, true); err != nil {
			b.log.Error().Err(err).Str("worker", w.id).Msg("runner failed")
		}
		b.mu.Lock()
		if b.runners[w.id] == r {
			delete(b.runners, w.id)
		}
		b.mu.Unlock()
	})
}

// stopRunner makes the runner of worker id finish its calls and stop,
// writing final as its last state.
func (b *Bridge) stopRunner(id, final string) {
	b.mu.Lock()
	r := b.runners[id]
	b.mu.Unlock()
	if r == nil || r.cancel == nil {
		return
	}
	r.setFinal(final)
	b.log.Info().Str("worker", id).Str("state", final).Msg("stopping runner")
	r.cancel()
}

// runnerFor returns the runner serving the worker whose eviction notices
// name host, or nil.
func (b *Bridge) runnerFor(host string) *runner {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.runners {
		if r.matches(host) {
			return r
		}
	}
	return nil
}
