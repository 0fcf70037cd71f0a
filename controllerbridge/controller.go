package controllerbridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/httpserve"
	"github.com/pullsched/pullsched/kafkaconn"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// Controller is the HTTP ingress. Create it with New and run it with Run.
type Controller struct {
	cfg   Config
	log   zerolog.Logger
	names topics.Names
	// arrivals is names.Arrivals(), built once rather than per request.
	arrivals string
	srv      *httpserve.Server
	book     *book
	view     *workerView
	m        *metrics
	adm      *admission // sheds load when the chain is behind (admission.go)

	ready    chan struct{}
	started  atomic.Bool
	draining atomic.Bool
	abort    chan struct{} // closed when the drain deadline passes: waiting requests answer 503
	prod     atomic.Pointer[producer.Producer]

	resultsSeen atomic.Int64
	startedAt   time.Time // set by Run before anything reads it

	// Dead letters of undecodable results: written (copies and
	// references), of them references, and those that could not be written.
	dlqLetters, dlqRefs, dlqFailed atomic.Int64
}

// New validates cfg, binds the HTTP address (so Addr is known at once) and
// registers the routes. It starts no goroutine and opens no Kafka
// connection: Run does.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	log := cfg.Logger.With().Str("part", "controller").Str("controller", cfg.ID).Logger()
	srv, err := httpserve.New(httpserve.Config{
		Addr:              cfg.Listen,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.writeTimeout(),
		IdleTimeout:       cfg.IdleTimeout,
		// Waiting requests are answered (result or 503) within DrainTimeout;
		// the rest of the budget lets those answers be written.
		ShutdownTimeout: cfg.DrainTimeout + 5*time.Second,
		Logger:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	c := &Controller{
		cfg:      cfg,
		log:      log,
		names:    cfg.Topics.Names(),
		arrivals: cfg.Topics.Names().Arrivals(),
		srv:      srv,
		book:     newBook(cfg.ActivationTTL, cfg.MaxActivations, cfg.MaxActivationBytes, cfg.MaxWaiting),
		view:     newWorkerView(),
		ready:    make(chan struct{}),
		abort:    make(chan struct{}),
	}
	c.m = newMetrics(srv.Registry(), c)
	c.adm = newAdmission(cfg.AdmissionTarget, cfg.AdmissionInterval)
	c.adm.register(srv.Registry())
	c.routes()
	return c, nil
}

// ID is the controller id; its results topic is results.<ID>.
func (c *Controller) ID() string { return c.cfg.ID }

// Addr is the bound HTTP address, known right after New.
func (c *Controller) Addr() string { return c.srv.Addr() }

// Registry is the Prometheus registry /metrics serves: the controller's
// metrics, registered by New, and the Go and process collectors.
func (c *Controller) Registry() *prometheus.Registry { return c.srv.Registry() }

// Ready is closed once the controller serves: the results topic exists, its
// reader is positioned and the HTTP server accepts requests.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Run provisions the topics, positions the results reader, follows the
// workers topic and serves HTTP until ctx ends. Then it stops accepting
// requests, lets waiting requests get their results for at most
// DrainTimeout, answers the rest 503, stops the readers and closes the
// producer. It returns nil on a clean stop. Run may be called once, and not after Close.
func (c *Controller) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("controller: Run called twice or after Close")
	}
	c.startedAt = time.Now()
	c.cfg.Kafka.LogSecurity(c.log)
	prod, err := producer.New(producer.Config{Kafka: c.conn(""), Logger: c.log, Linger: c.cfg.Linger})
	if err != nil {
		_ = c.srv.Close()
		return fmt.Errorf("controller: producer: %w", err)
	}
	defer prod.Close(5 * time.Second)
	c.prod.Store(prod)

	rr, err := c.start(ctx, prod)
	if err != nil {
		_ = c.srv.Close()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	readCtx, stopReaders := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		rr.run(readCtx)
	}()
	go func() {
		defer readers.Done()
		c.followWorkers(readCtx)
	}()
	stopAll := func() {
		stopReaders()
		readers.Wait()
	}

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	serveErr := make(chan error, 1)
	go func() { serveErr <- c.srv.Serve(serveCtx) }()
	c.srv.SetReady(true)
	close(c.ready)
	c.log.Info().Str("addr", c.Addr()).Str("results", c.names.Results(c.cfg.ID)).Msg("controller serving")

	select {
	case err := <-serveErr:
		stopAll()
		return fmt.Errorf("controller: %w", err)
	case <-ctx.Done():
	}

	// Stop accepting: new /run requests get 503, the listener closes and
	// /readyz says not ready; waiting requests keep their waiters.
	c.draining.Store(true)
	c.srv.SetReady(false)
	stopServing()
	c.drain()
	err = <-serveErr
	stopAll()
	fctx, cancelFlush := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelFlush()
	if ferr := prod.Flush(fctx); ferr != nil && err == nil {
		err = fmt.Errorf("controller: flush: %w", ferr)
	}
	c.log.Info().Msg("controller stopped")
	return err
}

// Close releases the HTTP address of a controller whose Run was never
// called; after Run has started it does nothing (Run closes everything).
func (c *Controller) Close() error {
	if !c.started.CompareAndSwap(false, true) {
		return nil
	}
	return c.srv.Close()
}

// start provisions the topics and positions the results reader at the
// current end of the results topic.
func (c *Controller) start(ctx context.Context, prod *producer.Producer) (*resultsReader, error) {
	adm := kadm.NewClient(prod.Client())
	if _, err := topics.EnsureAll(ctx, adm, c.cfg.Topics); err != nil {
		return nil, fmt.Errorf("controller: ensure topics: %w", kafkaconn.Explain(c.cfg.Kafka, err))
	}
	if _, err := topics.Ensure(ctx, adm, c.cfg.Topics.ResultsSpec(c.cfg.ID)); err != nil {
		return nil, fmt.Errorf("controller: ensure results topic: %w", err)
	}
	rr, err := newResultsReader(ctx, c, adm)
	if err != nil {
		return nil, err
	}
	return rr, nil
}

// drain waits until no request waits for a result or DrainTimeout passes,
// then tells the requests still waiting to answer 503.
func (c *Controller) drain() {
	deadline := time.NewTimer(c.cfg.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for c.book.waiting() > 0 {
		select {
		case <-deadline.C:
			c.log.Warn().Int("waiting", c.book.waiting()).Msg("drain deadline passed; answering waiting requests 503")
			close(c.abort)
			return
		case <-tick.C:
		}
	}
	close(c.abort)
}

// routes registers the HTTP routes.
func (c *Controller) routes() {
	mux := c.srv.Mux()
	run := httpserve.Handle(c.log, c.handleRun)
	run = traceIngress(run)
	mux.Handle("POST /run/{fn}", c.m.instrument(run))
	mux.Handle("GET /run/{fn}", c.m.instrument(run))
	mux.Handle("GET /activations/{id}", httpserve.Handle(c.log, c.handleActivation))
	mux.Handle("/admin/workers/add", httpserve.Handle(c.log, c.admin(c.handleAdd)))
	mux.Handle("/admin/workers/remove", httpserve.Handle(c.log, c.admin(c.handleRemove)))
	mux.Handle("GET /admin/workers", httpserve.Handle(c.log, c.admin(c.handleWorkers)))
	mux.Handle("GET /status", httpserve.Handle(c.log, c.handleStatus))
	mux.Handle("/run/", httpserve.Handle(c.log, func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			return &httpserve.Error{Status: http.StatusMethodNotAllowed, Msg: "use POST or GET /run/<function>",
				Header: http.Header{"Allow": {"GET, POST"}}}
		}
		return httpserve.Errorf(http.StatusBadRequest, "want /run/<function>")
	}))
}

// metrics are the controller's Prometheus metrics.
type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	results   *prometheus.CounterVec
	published prometheus.Counter
	pubErrors prometheus.Counter
	badRecs   prometheus.Counter
	gone      prometheus.Counter

	// The series of requests and latency by status code, and of results
	// by outcome, resolved once each: a label lookup hashes the label
	// values and takes the vector's lock, and formatting the code
	// allocates — per request, on the hot path. A series is created when
	// first used, as WithLabelValues would.
	byCode    [1000]atomic.Pointer[codeSeries]
	byOutcome [len(outcomes)]atomic.Pointer[prometheus.Counter]
}

// codeSeries are the request series of one status code.
type codeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// outcomes are the labels of the results counter, in the order of byOutcome.
var outcomes = [...]outcome{outDelivered, outStored, outDuplicate, outUnknown}

// code returns the series of status code (100-999, as net/http allows).
func (m *metrics) code(code int) *codeSeries {
	if code < 0 || code >= len(m.byCode) {
		label := strconv.Itoa(code)
		return &codeSeries{requests: m.requests.WithLabelValues(label), latency: m.latency.WithLabelValues(label)}
	}
	if s := m.byCode[code].Load(); s != nil {
		return s
	}
	label := strconv.Itoa(code)
	s := &codeSeries{requests: m.requests.WithLabelValues(label), latency: m.latency.WithLabelValues(label)}
	m.byCode[code].Store(s) // a racing store holds the same series
	return s
}

// result counts one result read, by what became of it.
func (m *metrics) result(out outcome) {
	for i, o := range outcomes {
		if o != out {
			continue
		}
		if c := m.byOutcome[i].Load(); c != nil {
			(*c).Inc()
			return
		}
		c := m.results.WithLabelValues(string(out))
		m.byOutcome[i].Store(&c)
		c.Inc()
		return
	}
	m.results.WithLabelValues(string(out)).Inc()
}

func newMetrics(reg *prometheus.Registry, c *Controller) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullsched_controller_requests_total", Help: "Answers to /run requests, by HTTP status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pullsched_controller_request_seconds", Help: "Time from a /run request to its answer, by HTTP status code.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}, []string{"code"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullsched_controller_results_total",
			Help: "Results read from this controller's results topic, by what became of them (delivered, stored, duplicate, unknown).",
		}, []string{"outcome"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullsched_controller_arrivals_published_total", Help: "Arrivals published.",
		}),
		pubErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullsched_controller_publish_errors_total", Help: "Arrivals that could not be published (answered 503).",
		}),
		badRecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullsched_controller_bad_results_total", Help: "Records on the results topic that could not be decoded (dead-lettered).",
		}),
		gone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pullsched_controller_clients_gone_total", Help: "Blocking requests whose client went away before the result came.",
		}),
	}
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pullsched_controller_waiting_requests", Help: "Blocking requests waiting for a result.",
	}, func() float64 { return float64(c.book.waiting()) })
	stored := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pullsched_controller_activations", Help: "Activations remembered for GET /activations/<id>.",
	}, func() float64 { return float64(c.book.stats().Activations) })
	storedBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pullsched_controller_activation_bytes", Help: "Bytes the remembered activations are accounted for (bounded by MaxActivationBytes).",
	}, func() float64 { return float64(c.book.stats().Bytes) })
	reg.MustRegister(m.requests, m.latency, m.results, m.published, m.pubErrors, m.badRecs, m.gone, waiting, stored, storedBytes)
	reg.MustRegister(consumer.DeadLetterMetrics("pullsched", "controller", c.deadLetterCounts)...)
	return m
}

// statusWriter remembers the status code written through it.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument counts and times the answers of h.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = 499 // the client went away and nothing was written
		}
		s := m.code(code)
		s.requests.Inc()
		s.latency.Observe(time.Since(start).Seconds())
	})
}
