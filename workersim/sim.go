package workersim

import (
	"container/list"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/logging"
	"github.com/pullsched/pullsched/workload"
)

// Errors with which an invocation can end without running.
var (
	// ErrClosed ends invocations that the closing of the simulator cut
	// short (answered 503).
	ErrClosed = errors.New("workersim: worker is shutting down")
	// ErrQueueFull refuses a request when QueueLimit requests already wait
	// for memory (answered 429).
	ErrQueueFull = errors.New("workersim: lambda function queue is full")
)

// finishEpsilon is the wall-time work (ns) under which an invocation counts as
// finished, absorbing float rounding in the processor-sharing arithmetic.
const finishEpsilon = 1000.0

type sbState int

const (
	sbInit sbState = iota // being created (cold-start extra)
	sbBusy                // running an invocation
	sbIdle                // paused, reusable
)

type sandbox struct {
	fn        string
	state     sbState
	idleSince time.Time
	lru       *list.Element // position in Sim.idle while idle
}

type phase int

const (
	phWaiting phase = iota // waiting for memory
	phInit                 // cold-start extra as a wait
	phRun                  // CPU work (exec, and cold extra when ColdCPU)
	phDone
)

// job is one invocation.
type job struct {
	fn       string
	prof     workload.Profile
	arrived  time.Time
	phase    phase
	sb       *sandbox
	cold     bool
	execWork float64   // wall ns of CPU work of the execution proper
	rem      float64   // wall ns of CPU work left (phRun)
	initEnd  time.Time // end of the cold-start wait (phInit)
	waitElem *list.Element
	done     chan struct{}

	// results, written before done is closed
	err      error
	duration time.Duration // model time from arrival to finish
}

// fnState holds per-function sandboxes and counters.
type fnState struct {
	idle        []*sandbox // idle sandboxes, most recently used last
	sandboxes   int
	invocations int64
	cold        int64
	warm        int64
	evictions   int64
}

// Sim is a simulated OpenLambda worker. Create it with New, serve
// Handler (or call Serve/Run), and Close it when done.
type Sim struct {
	cfg    Config
	log    zerolog.Logger
	total  int // sandbox slots
	goal   int // slots the evictor keeps free
	notify *notifier

	mu        sync.Mutex
	name      string
	advertise string
	closed    bool
	rng       *rand.Rand
	fns       map[string]*fnState
	idle      *list.List // idle sandboxes, least recently used first
	waiters   *list.List // jobs waiting for memory, FIFO
	running   map[*job]struct{}
	initing   map[*job]struct{}
	lastTick  time.Time
	used      int // slots held by sandboxes
	counters  counters
	timer     *time.Timer
	timerSet  bool
	stop      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
}

type counters struct {
	invocations, cold, warm, completed, abandoned, rejected, badRequests int64
	evictions, silent, keepAliveEvictions, memoryEvictions               int64
}

// New returns a running simulator for cfg; it errs, wrapping ErrConfig, on an
// invalid configuration.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	total := cfg.MemoryMB / cfg.SandboxMB
	goal := int(math.Ceil(cfg.FreeGoal*float64(total) - 1e-9))
	if goal > total-1 {
		goal = total - 1
	}
	s := &Sim{
		cfg:       cfg,
		log:       cfg.Logger.With().Str(logging.PartKey, "workersim").Logger(),
		total:     total,
		goal:      goal,
		name:      cfg.Name,
		advertise: cfg.Advertise,
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		fns:       make(map[string]*fnState),
		idle:      list.New(),
		waiters:   list.New(),
		running:   make(map[*job]struct{}),
		initing:   make(map[*job]struct{}),
		lastTick:  time.Now(),
		timer:     time.NewTimer(time.Hour),
		stop:      make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
	s.timer.Stop()
	if cfg.NotifyURL != "" {
		s.notify = newNotifier(cfg, s.log)
	}
	go s.loop()
	return s, nil
}

// Close stops the simulator: invocations still waiting or running end with
// ErrClosed (503), pending notices are dropped, and the simulator's
// goroutines are stopped and waited for. Close is idempotent and returns nil.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for e := s.waiters.Front(); e != nil; e = e.Next() {
			s.endJob(e.Value.(*job), ErrClosed)
		}
		s.waiters.Init()
		for j := range s.running {
			s.endJob(j, ErrClosed)
		}
		for j := range s.initing {
			s.endJob(j, ErrClosed)
		}
		clear(s.running)
		clear(s.initing)
		s.timer.Stop()
		s.mu.Unlock()
		close(s.stop)
		<-s.loopDone
		if s.notify != nil {
			s.notify.close()
		}
	})
	return nil
}

// loop owns the event timer: processor-sharing finishes, cold-start ends and
// keep-alive expiries.
func (s *Sim) loop() {
	defer close(s.loopDone)
	for {
		select {
		case <-s.stop:
			return
		case <-s.timer.C:
			s.mu.Lock()
			s.timerSet = false
			if !s.closed {
				s.step(time.Now())
			}
			s.mu.Unlock()
		}
	}
}

// step brings the model up to now and re-arms the timer. Called with mu held.
func (s *Sim) step(now time.Time) {
	s.advance(now)
	for j := range s.initing {
		if !j.initEnd.After(now) {
			delete(s.initing, j)
			j.phase = phRun
			j.rem = j.execWork
			j.sb.state = sbBusy
			s.running[j] = struct{}{}
		}
	}
	var finished []*job
	for j := range s.running {
		if j.rem <= finishEpsilon {
			finished = append(finished, j)
		}
	}
	// Release in arrival order so that the LRU order, and so the whole run,
	// is deterministic for a seed.
	slices.SortFunc(finished, func(a, b *job) int { return a.arrived.Compare(b.arrived) })
	for _, j := range finished {
		s.finish(j, now)
	}
	if s.cfg.KeepAlive > 0 {
		ka := s.wall(s.cfg.KeepAlive)
		for e := s.idle.Front(); e != nil; e = s.idle.Front() {
			sb := e.Value.(*sandbox)
			if sb.idleSince.Add(ka).After(now) {
				break
			}
			s.evict(sb, true)
		}
	}
	s.dispatch(now)
	s.evictToGoal()
	s.rearm(now)
}

// advance charges the wall time since the last tick to every runnable job at
// the processor-sharing rate. Called with mu held.
func (s *Sim) advance(now time.Time) {
	dt := float64(now.Sub(s.lastTick))
	s.lastTick = now
	if dt <= 0 || len(s.running) == 0 {
		return
	}
	done := dt * s.rate()
	for j := range s.running {
		j.rem -= done
	}
}

// rate is the speed of each runnable job: min(1, cores/n).
func (s *Sim) rate() float64 {
	n := len(s.running)
	if n <= s.cfg.Cores {
		return 1
	}
	return float64(s.cfg.Cores) / float64(n)
}

// rearm sets the timer to the next event. Called with mu held.
func (s *Sim) rearm(now time.Time) {
	next := time.Time{}
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if len(s.running) > 0 {
		minRem := math.Inf(1)
		for j := range s.running {
			minRem = min(minRem, j.rem)
		}
		consider(now.Add(time.Duration(math.Ceil(max(minRem, 0) / s.rate()))))
	}
	for j := range s.initing {
		consider(j.initEnd)
	}
	if s.cfg.KeepAlive > 0 {
		if e := s.idle.Front(); e != nil {
			consider(e.Value.(*sandbox).idleSince.Add(s.wall(s.cfg.KeepAlive)))
		}
	}
	if next.IsZero() {
		if s.timerSet {
			s.timer.Stop()
			s.timerSet = false
		}
		return
	}
	s.timer.Reset(max(next.Sub(now), 0))
	s.timerSet = true
}

// wall converts model time to wall time.
func (s *Sim) wall(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.TimeScale)
}

// model converts wall time to model time.
func (s *Sim) model(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.cfg.TimeScale)
}

// jittered draws d·(1±Jitter) in wall ns. Called with mu held.
func (s *Sim) jittered(d time.Duration) float64 {
	f := 1.0
	if s.cfg.Jitter > 0 {
		f += s.cfg.Jitter * (2*s.rng.Float64() - 1)
	}
	return float64(d) * s.cfg.TimeScale * f
}

func (s *Sim) fn(name string) *fnState {
	f := s.fns[name]
	if f == nil {
		f = &fnState{}
		s.fns[name] = f
	}
	return f
}

// profile returns the profile for function fn.
func (s *Sim) profile(fn string) workload.Profile {
	if p, ok := workload.ProfileFor(fn); ok {
		return p
	}
	return s.cfg.Default
}

// submit enqueues an invocation of fn and returns its job; the job's done
// channel closes when it finishes or fails.
func (s *Sim) submit(fn string) *job {
	j := &job{fn: fn, prof: s.profile(fn), done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	j.arrived = now
	if s.closed {
		s.endJob(j, ErrClosed)
		return j
	}
	s.advance(now)
	j.waitElem = s.waiters.PushBack(j)
	s.dispatch(now)
	if j.phase == phWaiting && s.waiters.Len() > s.cfg.QueueLimit {
		s.waiters.Remove(j.waitElem)
		s.counters.rejected++
		s.endJob(j, ErrQueueFull)
	}
	s.evictToGoal()
	s.rearm(now)
	return j
}

// abandon gives up a job whose client went away. Called without mu.
func (s *Sim) abandon(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.phase == phDone {
		return
	}
	now := time.Now()
	s.advance(now)
	s.counters.abandoned++
	switch j.phase {
	case phWaiting:
		s.waiters.Remove(j.waitElem)
	case phInit:
		delete(s.initing, j)
		s.discard(j.sb)
	case phRun:
		delete(s.running, j)
		if j.cold && j.rem > j.execWork {
			s.discard(j.sb) // still being created (ColdCPU)
		} else {
			s.release(j.sb, now)
		}
	}
	s.endJob(j, errAbandoned)
	s.dispatch(now)
	s.evictToGoal()
	s.rearm(now)
}

// errAbandoned is recorded on abandoned jobs; nobody reads it, the client is
// gone.
var errAbandoned = errors.New("workersim: client went away")

// dispatch gives sandboxes to waiting jobs: warm ones first, then new
// sandboxes in arrival order while memory allows. Called with mu held.
func (s *Sim) dispatch(now time.Time) {
	for e := s.waiters.Front(); e != nil; {
		next := e.Next()
		j := e.Value.(*job)
		f := s.fn(j.fn)
		if n := len(f.idle); n > 0 {
			sb := f.idle[n-1]
			f.idle = f.idle[:n-1]
			s.idle.Remove(sb.lru)
			sb.lru = nil
			s.waiters.Remove(e)
			s.start(j, sb, false, now)
		}
		e = next
	}
	for e := s.waiters.Front(); e != nil; e = s.waiters.Front() {
		if s.used >= s.total {
			lru := s.idle.Front()
			if lru == nil {
				return // wait for a sandbox to be released
			}
			s.evict(lru.Value.(*sandbox), false)
		}
		j := e.Value.(*job)
		s.waiters.Remove(e)
		sb := &sandbox{fn: j.fn, state: sbInit}
		s.used++
		s.fn(j.fn).sandboxes++
		s.start(j, sb, true, now)
	}
}

// start runs j on sb. Called with mu held.
func (s *Sim) start(j *job, sb *sandbox, cold bool, now time.Time) {
	j.sb, j.cold, j.waitElem = sb, cold, nil
	j.execWork = s.jittered(j.prof.Warm)
	f := s.fn(j.fn)
	f.invocations++
	s.counters.invocations++
	if !cold {
		f.warm++
		s.counters.warm++
		sb.state = sbBusy
		j.phase, j.rem = phRun, j.execWork
		s.running[j] = struct{}{}
		return
	}
	f.cold++
	s.counters.cold++
	extra := s.jittered(j.prof.ColdExtra())
	if s.cfg.ColdCPU {
		j.phase, j.rem = phRun, extra+j.execWork
		s.running[j] = struct{}{}
		return
	}
	j.phase, j.initEnd = phInit, now.Add(time.Duration(extra))
	s.initing[j] = struct{}{}
}

// finish completes a running job. Called with mu held.
func (s *Sim) finish(j *job, now time.Time) {
	delete(s.running, j)
	s.release(j.sb, now)
	s.counters.completed++
	j.duration = s.model(now.Sub(j.arrived))
	s.endJob(j, nil)
}

func (s *Sim) endJob(j *job, err error) {
	j.phase = phDone
	j.err = err
	close(j.done)
}

// release makes sb idle. Called with mu held.
func (s *Sim) release(sb *sandbox, now time.Time) {
	sb.state = sbIdle
	sb.idleSince = now
	sb.lru = s.idle.PushBack(sb)
	f := s.fn(sb.fn)
	f.idle = append(f.idle, sb)
}

// discard frees a sandbox that never served an invocation: no notice, not an
// eviction. Called with mu held.
func (s *Sim) discard(sb *sandbox) {
	s.used--
	s.fn(sb.fn).sandboxes--
}

// evict destroys an idle sandbox and announces it unless the draw makes it
// silent. Called with mu held.
func (s *Sim) evict(sb *sandbox, keepAlive bool) {
	s.idle.Remove(sb.lru)
	sb.lru = nil
	f := s.fn(sb.fn)
	for i, x := range f.idle {
		if x == sb {
			f.idle = append(f.idle[:i], f.idle[i+1:]...)
			break
		}
	}
	f.sandboxes--
	f.evictions++
	s.used--
	s.counters.evictions++
	if keepAlive {
		s.counters.keepAliveEvictions++
	} else {
		s.counters.memoryEvictions++
	}
	silent := s.cfg.SilentEvictions > 0 && s.rng.Float64() < s.cfg.SilentEvictions
	if silent {
		s.counters.silent++
	}
	s.log.Debug().Str("function", sb.fn).Bool("keep_alive", keepAlive).Bool("silent", silent).Msg("evict sandbox")
	if !silent && s.notify != nil {
		s.notify.enqueue(sb.fn, s.advertise)
	}
}

// evictToGoal evicts idle sandboxes, least recently used first, while fewer
// than goal slots are free. Called with mu held.
func (s *Sim) evictToGoal() {
	for s.total-s.used < s.goal {
		e := s.idle.Front()
		if e == nil {
			return
		}
		s.evict(e.Value.(*sandbox), false)
	}
}
