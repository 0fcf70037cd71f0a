package workersim

// Stats is a snapshot of the simulator's counters and state, as served on
// GET /stats.
type Stats struct {
	// Invocations counts invocations that got a sandbox (Cold + Warm).
	Invocations int64 `json:"invocations"`
	// Cold counts invocations that created their sandbox.
	Cold int64 `json:"cold"`
	// Warm counts invocations that reused an idle sandbox.
	Warm int64 `json:"warm"`
	// Completed counts invocations that ran to the end.
	Completed int64 `json:"completed"`
	// Abandoned counts invocations whose client went away first.
	Abandoned int64 `json:"abandoned"`
	// Rejected counts requests refused with 429 (queue full).
	Rejected int64 `json:"rejected"`
	// BadRequests counts requests refused for their path, method or body.
	BadRequests int64 `json:"bad_requests"`
	// Evictions counts evicted sandboxes, announced or not.
	Evictions int64 `json:"evictions"`
	// MemoryEvictions counts evictions under memory pressure.
	MemoryEvictions int64 `json:"memory_evictions"`
	// KeepAliveEvictions counts evictions at keep-alive expiry.
	KeepAliveEvictions int64 `json:"keep_alive_evictions"`
	// SilentEvictions counts evictions deliberately not announced.
	SilentEvictions int64 `json:"silent_evictions"`
	// NoticesSent counts eviction notices the receiver accepted (2xx).
	NoticesSent int64 `json:"notices_sent"`
	// NoticesFailed counts notices that failed or were refused.
	NoticesFailed int64 `json:"notices_failed"`
	// NoticesDropped counts notices dropped on a full queue or at Close.
	NoticesDropped int64 `json:"notices_dropped"`
	// Sandboxes is the number of live sandboxes (initialising, busy, idle).
	Sandboxes int `json:"sandboxes"`
	// Idle is the number of idle sandboxes.
	Idle int `json:"idle"`
	// Running is the number of invocations using the CPUs.
	Running int `json:"running"`
	// Waiting is the number of requests waiting for memory.
	Waiting int `json:"waiting"`
	// Slots is the pool size in sandboxes (MemoryMB / SandboxMB).
	Slots int `json:"slots"`
	// Functions holds per-function counters, by function name.
	Functions map[string]FunctionStats `json:"functions"`
}

// FunctionStats holds the counters of one function.
type FunctionStats struct {
	// Invocations counts invocations that got a sandbox.
	Invocations int64 `json:"invocations"`
	// Cold counts cold starts.
	Cold int64 `json:"cold"`
	// Warm counts warm starts.
	Warm int64 `json:"warm"`
	// Evictions counts evicted sandboxes of the function.
	Evictions int64 `json:"evictions"`
	// Sandboxes is the number of live sandboxes of the function.
	Sandboxes int `json:"sandboxes"`
	// Idle is the number of idle sandboxes of the function.
	Idle int `json:"idle"`
}

// Stats returns a snapshot of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters
	st := Stats{
		Invocations:        c.invocations,
		Cold:               c.cold,
		Warm:               c.warm,
		Completed:          c.completed,
		Abandoned:          c.abandoned,
		Rejected:           c.rejected,
		BadRequests:        c.badRequests,
		Evictions:          c.evictions,
		MemoryEvictions:    c.memoryEvictions,
		KeepAliveEvictions: c.keepAliveEvictions,
		SilentEvictions:    c.silent,
		Sandboxes:          s.used,
		Idle:               s.idle.Len(),
		Running:            len(s.running),
		Waiting:            s.waiters.Len(),
		Slots:              s.total,
		Functions:          make(map[string]FunctionStats, len(s.fns)),
	}
	if s.notify != nil {
		st.NoticesSent = s.notify.sent.Load()
		st.NoticesFailed = s.notify.failed.Load()
		st.NoticesDropped = s.notify.dropped.Load()
	}
	for name, f := range s.fns {
		st.Functions[name] = FunctionStats{
			Invocations: f.invocations,
			Cold:        f.cold,
			Warm:        f.warm,
			Evictions:   f.evictions,
			Sandboxes:   f.sandboxes,
			Idle:        len(f.idle),
		}
	}
	return st
}
