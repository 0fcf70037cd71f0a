package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pullsched/pullsched/topics"
)

// Config configures a run. The zero value of every field selects its
// default.
type Config struct {
	// Bin is the pullsched binary to run. Default: built once with go build
	// into WorkDir.
	Bin string
	// Brokers are the seed brokers of a running Kafka. Required.
	Brokers []string
	// Short selects the CI form (each scenario a few seconds).
	Short bool
	// Scenarios selects scenarios by name, comma-separated. Default all.
	Scenarios string
	// Rate is the offered load in requests per second. Default 100.
	Rate float64
	// Functions is how many functions the load spreads over. Default 16.
	Functions int
	// Timeout is every request's ?timeout=. Default 5s short, 20s long.
	Timeout time.Duration
	// Slack is how long past its deadline a request may stay unanswered
	// before it is a hang. Default 10s: beyond the controller's own
	// ResultMargin (5s), so a hang is a request nothing answers, and an
	// answer between Late and Slack past the deadline is late.
	Slack time.Duration
	// Late is how far past its deadline an answer may come. Default 1s.
	Late time.Duration
	// Slow is the latency beyond which a 200 does not count as recovered.
	// Default 1s.
	Slow time.Duration
	// DupBudget is the allowed share of duplicate executions. Default
	// 0.001.
	DupBudget float64
	// TimeScale is the workersims' --time-scale. Default 0.1.
	TimeScale float64
	// Partitions of arrivals and worker-events. Default 8.
	Partitions int
	// BrokerStopCmd and BrokerStartCmd are shell command lines that stop
	// and start the broker; with both set the broker-restart scenario runs.
	BrokerStopCmd, BrokerStartCmd string
	// WorkDir holds the parts' logs (and the built binary). Default: a new
	// temporary directory, kept after the run.
	WorkDir string
	// KeepTopics leaves the run's topics on the broker. Default: deleted.
	KeepTopics bool
	// Progress receives a line per step. Default: discarded.
	Progress io.Writer
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.Functions == 0 {
		c.Functions = 16
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Second
		if c.Short {
			c.Timeout = 5 * time.Second
		}
	}
	if c.Slack == 0 {
		c.Slack = 10 * time.Second
	}
	if c.Late == 0 {
		c.Late = time.Second
	}
	if c.Slow == 0 {
		c.Slow = time.Second
	}
	if c.DupBudget == 0 {
		c.DupBudget = 0.001
	}
	if c.TimeScale == 0 {
		c.TimeScale = 0.1
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("chaos: invalid config")

// Validate reports a setting that cannot work.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	c = c.WithDefaults()
	switch {
	case c.Rate < 0 || c.Functions < 1 || c.Timeout < 0 || c.Partitions < 2:
		return fmt.Errorf("%w: bad settings (rate %v, functions %d, timeout %v, partitions %d)", ErrConfig, c.Rate, c.Functions, c.Timeout, c.Partitions)
	case (c.BrokerStopCmd == "") != (c.BrokerStartCmd == ""):
		return fmt.Errorf("%w: give both the broker stop and start commands, or neither", ErrConfig)
	}
	return nil
}

// Workers is how many simulated workers (each with its sidecar) run.
const Workers = 4

// run is one run's state.
type run struct {
	cfg   Config
	id    string
	names topics.Names
	tcfg  topics.Config
	kafka *kafka
	count *counter
	load  *loader

	schedulers []*part
	controller *part
	sims       []*part
	sidecars   []*part
	proxies    []*proxy
	workerIDs  []string
}

// parts lists every part.
func (r *run) parts() []*part {
	out := append([]*part{}, r.schedulers...)
	out = append(out, r.controller)
	out = append(out, r.sims...)
	return append(out, r.sidecars...)
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Progress, "chaos %s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

// Run starts the system, runs the scenarios one after another and returns
// the report. The error is for a run that could not be carried out (a
// part would not start); failed assertions are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	all := Scenarios(Form{Short: cfg.Short, BrokerRestart: cfg.BrokerStopCmd != ""})
	scs, err := Select(all, cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	form := "long"
	if cfg.Short {
		form = "short"
	}
	rep := &Report{Started: time.Now().UTC(), Form: form, Brokers: cfg.Brokers, Rate: cfg.Rate,
		Functions: cfg.Functions, TimeScale: cfg.TimeScale, Timeout: cfg.Timeout.String(),
		Slow: cfg.Slow.String(), DupBudget: cfg.DupBudget, LoadStart: loadAvg()}
	if cfg.WorkDir == "" {
		if cfg.WorkDir, err = os.MkdirTemp("", "pullsched-chaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	r := &run{cfg: cfg, id: hex.EncodeToString(b[:]), count: newCounter()}
	r.tcfg = topics.Config{Prefix: "chaos-" + r.id + ".", Partitions: int32(cfg.Partitions), Replication: -1}
	r.names = r.tcfg.Names()
	r.logf("run %s: logs in %s, topics %s*", r.id, cfg.WorkDir, r.names.Prefix)
	if cfg.Bin == "" {
		r.logf("building pullsched")
		if cfg.Bin, err = buildBinary(ctx, cfg.WorkDir); err != nil {
			return nil, err
		}
		r.cfg.Bin = cfg.Bin
	}
	defer r.teardown()
	if err := r.setup(ctx); err != nil {
		rep.Error = err.Error()
		rep.Finish()
		return rep, err
	}
	rep.Kafka = r.kafka.version(ctx)
	for _, sc := range scs {
		if ctx.Err() != nil {
			break
		}
		r.logf("scenario %s: %s", sc.Name, sc.Doc)
		res := r.scenario(ctx, sc)
		if ctx.Err() != nil {
			break // an interrupted scenario judges nothing
		}
		verdict := "pass"
		if !res.Pass {
			verdict = "FAIL: " + strings.Join(res.Failures, "; ")
		}
		r.logf("scenario %s: sent %d, %s, recovery %s: %s", sc.Name, res.Sent, statuses(res.ByStatus), recovery(res), verdict)
		rep.Results = append(rep.Results, res)
	}
	if ctx.Err() != nil {
		rep.Error = "interrupted: " + ctx.Err().Error()
	}
	rep.LoadEnd = loadAvg()
	rep.Finish()
	return rep, nil
}

// setup creates the topics and starts every part.
func (r *run) setup(ctx context.Context) error {
	k, err := newKafka(r.cfg.Brokers, r.names)
	if err != nil {
		return err
	}
	r.kafka = k
	if err := r.waitBroker(ctx, 60*time.Second); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = topics.EnsureAll(cctx, k.adm, r.tcfg)
	cancel()
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	if err := k.follow(ctx, r.cfg.Brokers); err != nil {
		return err
	}
	common := func(listen string) []string {
		return []string{"--brokers", strings.Join(r.cfg.Brokers, ","), "--topic-prefix", r.names.Prefix,
			"--partitions", fmt.Sprint(r.cfg.Partitions), "--listen", listen}
	}
	mk := func(name, kind, ready string, args ...string) (*part, error) {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		return &part{name: name, kind: kind, bin: r.cfg.Bin, addr: addr, ready: ready,
			log: filepath.Join(r.cfg.WorkDir, name+".log"), args: append(append([]string{kind}, common(addr)...), args...)}, nil
	}
	for i := 1; i <= 2; i++ {
		p, err := mk(fmt.Sprintf("scheduler-%d", i), "scheduler", "/readyz", "--id", fmt.Sprintf("scheduler-%d", i))
		if err != nil {
			return err
		}
		r.schedulers = append(r.schedulers, p)
	}
	if r.controller, err = mk("controller", "controller", "/readyz", "--id", "chaos", "--admin-token", "chaos-"+r.id); err != nil {
		return err
	}
	for i := 1; i <= Workers; i++ {
		simAddr, err := freePort()
		if err != nil {
			return err
		}
		px, err := newProxy("http://"+simAddr, r.count)
		if err != nil {
			return err
		}
		r.proxies = append(r.proxies, px)
		id := fmt.Sprintf("w%d", i)
		r.workerIDs = append(r.workerIDs, id)
		side, err := mk(fmt.Sprintf("invoker-%d", i), "invoker", "/readyz",
			"--id", fmt.Sprintf("bridge-%d", i), "--worker-url", "http://"+px.addr(), "--worker-id", id)
		if err != nil {
			return err
		}
		sim := &part{name: fmt.Sprintf("workersim-%d", i), kind: "workersim", bin: r.cfg.Bin, addr: simAddr, ready: "/status",
			log: filepath.Join(r.cfg.WorkDir, fmt.Sprintf("workersim-%d.log", i)),
			args: append([]string{"workersim"}, append(common(simAddr), "--time-scale", fmt.Sprint(r.cfg.TimeScale),
				"--advertise", px.addr(), "--name", id, "--notify-url", "http://"+side.addr)...)}
		r.sims = append(r.sims, sim)
		r.sidecars = append(r.sidecars, side)
	}
	r.logf("starting 2 schedulers, the controller, %d workersims and their sidecars", Workers)
	for _, p := range r.parts() {
		if err := p.start(); err != nil {
			return err
		}
	}
	for _, p := range r.parts() {
		if err := p.waitReady(ctx, 90*time.Second); err != nil {
			return err
		}
	}
	r.load = newLoader("http://"+r.controller.addr, functions(r.cfg.Functions), r.cfg.Rate, r.cfg.Timeout, r.cfg.Slack, r.id)
	r.logf("all parts ready; warming up")
	if err := r.settle(ctx, 90*time.Second); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// waitBroker waits until the broker answers.
func (r *run) waitBroker(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := r.kafka.adm.ApiVersions(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("broker %v does not answer: %w", r.cfg.Brokers, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// settle sends one request per function, again and again, until a whole
// round is answered 200 within the slow threshold, or timeout passes.
func (r *run) settle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	l := *r.load
	l.rate = 50
	var last string
	for round := 0; ; round++ {
		start := time.Now()
		samples := l.drive(ctx, fmt.Sprintf("settle%d", round), start, time.Duration(len(l.fns))*l.interval(), nil)
		bad := 0
		last = ""
		for _, s := range samples {
			if !s.Good(r.cfg.Slow) {
				bad++
				last = fmt.Sprintf("%s: %s after %v", s.Fn, s.StatusKey(), s.Latency().Round(time.Millisecond))
			}
		}
		if bad == 0 && len(samples) > 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("requests still fail after %v (last: %s)", timeout, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// teardown stops every part, closes the proxies and deletes the topics.
func (r *run) teardown() {
	var wg sync.WaitGroup
	for _, p := range r.parts() {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop()
		}()
	}
	wg.Wait()
	for _, px := range r.proxies {
		px.close()
	}
	if r.kafka == nil {
		return
	}
	if !r.cfg.KeepTopics {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if tds, err := r.kafka.adm.ListTopics(ctx); err == nil {
			var del []string
			for _, t := range tds.Names() {
				if strings.HasPrefix(t, r.names.Prefix) {
					del = append(del, t)
				}
			}
			if len(del) > 0 {
				_, _ = r.kafka.adm.DeleteTopics(ctx, del...)
			}
		}
		cancel()
	}
	r.kafka.close()
}

// scrapeAll reads every running part's counters, by part name.
func (r *run) scrapeAll(ctx context.Context) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, p := range r.parts() {
		if p.kind == "workersim" || !p.running() {
			continue
		}
		if m, err := scrape(ctx, p.addr); err == nil {
			out[p.name] = m
		}
	}
	return out
}

// targets lists every consumed topic with the kind of its events.
func (r *run) targets() []target {
	t := []target{
		{r.names.Arrivals(), topics.KindArrival},
		{r.names.WorkerEvents(), topics.KindCompletion},
		{r.names.Workers(), topics.KindWorker},
		{r.names.Results("chaos"), topics.KindResult},
	}
	for _, w := range r.workerIDs {
		t = append(t, target{r.names.Invoker(w), topics.KindAssignment})
	}
	return t
}

// faultReport is what the fault goroutine tells the scenario.
type faultReport struct {
	restartAt time.Duration
	outage    time.Duration
	restarted map[string]bool // parts restarted: their counters started over
	injected  []recordID
	target    string
	requireT  bool
	forbidT   bool
	notes     []string
	mid       map[string]map[string]float64
}

// scenario runs one scenario and judges it.
func (r *run) scenario(ctx context.Context, sc Scenario) Result {
	before := r.scrapeAll(ctx)
	dlq0, dlqErr := r.kafka.adm.ListEndOffsets(ctx, r.names.DLQ())
	start := time.Now().Add(100 * time.Millisecond)
	windowOver := make(chan struct{})
	enough := make(chan struct{}) // the fault ends the window early
	faults := make(chan faultReport, 1)
	go func() { faults <- r.fault(ctx, sc, start, windowOver, enough) }()
	samples := r.load.drive(ctx, sc.Name, start, sc.Before+sc.Window, enough)
	close(windowOver)
	fr := <-faults

	obs := Observed{FaultAt: sc.Before, RestartAt: fr.restartAt, Bound: sc.Bound, RestartBound: sc.RestartBound,
		Outage: fr.outage, Target: fr.target, RequireTarget: fr.requireT, ForbidTarget: fr.forbidT, Notes: fr.notes}
	// No part stuck: every part ready, no stuck partitions, load served.
	for _, p := range r.parts() {
		if err := p.waitReady(ctx, 30*time.Second); err != nil {
			obs.NotReady = append(obs.NotReady, err.Error())
		}
	}
	if err := r.settle(ctx, 30*time.Second); err != nil {
		obs.NotReady = append(obs.NotReady, "load: "+err.Error())
	}
	after := r.scrapeAll(ctx)
	for name, m := range after {
		if m["stuck_partitions"] > 0 {
			obs.NotReady = append(obs.NotReady, fmt.Sprintf("%s: %.0f stuck partition(s)", name, m["stuck_partitions"]))
		}
	}
	obs.Counted = map[string]float64{}
	for _, p := range r.parts() {
		restarted := fr.restarted[p.name]
		mid := fr.mid[p.name]
		if !restarted {
			mid = nil
		}
		for k, v := range counterDelta(before[p.name], mid, after[p.name], restarted) {
			obs.Counted[k] += v
		}
	}
	if len(fr.injected) > 0 {
		obs.Injected = len(fr.injected)
		var got map[recordID]bool
		err := dlqErr
		if err == nil {
			got, err = r.kafka.deadLettered(ctx, r.names.DLQ(), dlq0)
		}
		if err != nil {
			obs.Notes = append(obs.Notes, "reading the dlq: "+err.Error())
		}
		missing := map[string]int{}
		for _, id := range fr.injected {
			if got[id] {
				obs.DeadLettered++
			} else {
				missing[id.topic]++
			}
		}
		for t, n := range missing {
			obs.Notes = append(obs.Notes, fmt.Sprintf("%d record(s) injected into %s not in the dlq", n, t))
		}
		sort.Strings(obs.Notes)
	}
	obs.Execs = r.count.snapshot()
	th := Thresholds{Timeout: r.cfg.Timeout, Slack: r.cfg.Slack, Late: r.cfg.Late, Slow: r.cfg.Slow,
		DupBudget: r.cfg.DupBudget, Interval: r.load.interval(), Stable: 2 * time.Second, RelapseBudget: 0.01}
	res := Tally(sc, samples, obs, th)
	if err := writeSamples(filepath.Join(r.cfg.WorkDir, sc.Name+".samples.json"), samples, obs.Execs); err != nil {
		r.logf("writing samples: %v", err)
	}
	return res
}

// writeSamples keeps a scenario's samples, with their executions, for
// a closer look at a failure.
func writeSamples(path string, samples []Sample, execs map[string]Execs) error {
	type row struct {
		Sample
		Execs Execs `json:"execs"`
	}
	rows := make([]row, len(samples))
	for i, s := range samples {
		rows[i] = row{s, execs[s.Nonce]}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// fault injects sc's fault at start+sc.Before and undoes it (restarts what
// it killed) after sc.Down or, for faults that last the window, when
// windowOver closes. It may close enough to end the window early (once a
// restarted broker has had its recovery bound and a tail of load).
func (r *run) fault(ctx context.Context, sc Scenario, start time.Time, windowOver <-chan struct{}, enough chan<- struct{}) faultReport {
	fr := faultReport{restarted: map[string]bool{}}
	at := start.Add(sc.Before)
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
		return fr
	}
	fr.mid = r.scrapeAll(ctx)
	since := func() time.Duration { return time.Since(start) }
	sleep := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	killRestart := func(p *part) {
		r.logf("SIGKILL %s", p.name)
		p.kill()
		sleep(sc.Down)
		r.logf("restarting %s", p.name)
		fr.restartAt = since()
		fr.restarted[p.name] = true
		if err := p.start(); err != nil {
			fr.notes = append(fr.notes, err.Error())
		}
		<-windowOver
	}
	switch sc.Fault {
	case FaultNone:
		<-windowOver
	case FaultKillScheduler:
		killRestart(r.schedulers[0])
	case FaultKillController:
		killRestart(r.controller)
	case FaultKillSidecar:
		fr.target = r.workerIDs[0]
		killRestart(r.sidecars[0])
	case FaultKillWorker:
		fr.target = r.workerIDs[1]
		killRestart(r.sims[1])
	case FaultBrokerRestart:
		log := filepath.Join(r.cfg.WorkDir, "broker.log")
		r.logf("stopping the broker: %s", r.cfg.BrokerStopCmd)
		t0 := time.Now()
		if err := runCmd(ctx, r.cfg.BrokerStopCmd, log, 2*time.Minute); err != nil {
			fr.notes = append(fr.notes, "broker stop: "+err.Error())
		}
		sleep(sc.Down)
		r.logf("starting the broker: %s", r.cfg.BrokerStartCmd)
		if err := runCmd(ctx, r.cfg.BrokerStartCmd, log, 3*time.Minute); err != nil {
			fr.notes = append(fr.notes, "broker start: "+err.Error())
		}
		fr.outage = time.Since(t0)
		fr.restartAt = since()
		r.logf("broker back after %v", fr.outage.Round(100*time.Millisecond))
		select {
		case <-windowOver:
		case <-time.After(sc.RestartBound + 10*time.Second):
			close(enough)
			<-windowOver
		}
	case FaultOversized, FaultMalformed:
		what, values := "oversized", func(k topics.Kind, key []byte) [][]byte { return [][]byte{oversized(k, key)} }
		if sc.Fault == FaultMalformed {
			what = "malformed"
			values = func(k topics.Kind, _ []byte) [][]byte {
				var out [][]byte
				for _, j := range malformed(k) {
					out = append(out, j.value)
				}
				return out
			}
		}
		took, notes := r.kafka.inject(ctx, r.targets(), what, values)
		r.logf("wrote %d %s records into %d topics", len(took), what, len(r.targets()))
		fr.injected, fr.notes = took, append(fr.notes, notes...)
		<-windowOver
	case FaultSkewAhead:
		w := r.workerIDs[2]
		fr.target = w
		r.logf("SIGKILL %s, then its last heartbeat again stamped 60s ahead", r.sidecars[2].name)
		r.sidecars[2].kill()
		if rec, ok := r.kafka.lastRecord(w); ok {
			rec.At = time.Now().Add(60 * time.Second)
			if err := r.kafka.produceWorker(ctx, rec, rec.At, "skew-ahead"); err != nil {
				fr.notes = append(fr.notes, "skewed heartbeat: "+err.Error())
			}
		} else {
			fr.notes = append(fr.notes, "no heartbeat of "+w+" seen to skew")
		}
		<-windowOver
		fr.restarted[r.sidecars[2].name] = true
		if err := r.sidecars[2].start(); err != nil {
			fr.notes = append(fr.notes, err.Error())
		}
	case FaultSkewBehind:
		w := r.workerIDs[3]
		fr.target, fr.requireT = w, true
		r.logf("re-writing every heartbeat of %s stamped 3s behind", w)
		r.kafka.setSkew(w, -3*time.Second)
		<-windowOver
		r.kafka.setSkew(w, 0)
	case FaultForgedWorker, FaultForgedBridge:
		dead, _ := freePort()
		forged := &topics.Worker{ID: "forged-" + r.id, URL: "http://" + dead, State: "active", Source: topics.SourceSidecar,
			Healthy: true}
		if sc.Fault == FaultForgedBridge {
			forged.ID, forged.Bridge = "forged-bridge-"+r.id, "bridge-forged-"+r.id
		}
		r.logf("writing a forged worker record %s every second", forged.ID)
		for done := false; !done; {
			forged.At = time.Now()
			if err := r.kafka.produceWorker(ctx, forged, forged.At, "forged"); err != nil {
				fr.notes = append(fr.notes, "forged record: "+err.Error())
			}
			select {
			case <-windowOver:
				done = true
			case <-time.After(time.Second):
			}
		}
		forged.State, forged.Healthy, forged.At = "removed", false, time.Now()
		_ = r.kafka.produceWorker(ctx, forged, forged.At, "forged")
		fr.target, fr.forbidT = forged.ID, true
	}
	return fr
}

// loadAvg returns the 1, 5 and 15 minute load averages, "" where the
// system does not tell.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
