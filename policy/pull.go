package policy

import (
	"math"
	"time"
)

// IdleTracker is implemented by policies that keep per-function idle queues
// (pull). Schedulers use it to rebuild idle state, e.g. from worker reports
// after a partition moves, without touching in-flight counts.
type IdleTracker interface {
	// Idle adds one idle instance of function on worker, as an OK
	// completion would, but without releasing a slot. Unknown, draining and
	// departed workers are ignored.
	Idle(worker, function string, now time.Time)
	// IdleCount returns how many idle instances of function the policy
	// believes worker holds (0 if none or unknown).
	IdleCount(worker, function string) int
}

const notEligible = math.MaxInt64

// idleEntry is the idle state of one (worker, function) pair: how many idle
// instances the worker holds, when it last reported one, and where the entry
// sits in the function's heap, the worker's list and the expiry list.
type idleEntry struct {
	w, f  int32
	count int32
	key   int64  // worker load, or notEligible when it has no room
	seq   uint64 // enqueue sequence; higher is more recent
	stamp int64  // last report, UnixNano, never below its predecessor's
	hpos  int32  // index in fheaps[f], -1 while dormant (count 0)
	wpos  int32  // index in the worker's bucket for key
	prev  int32  // expiry list, ordered by stamp
	next  int32
}

// pull is Hiku's pull-based policy. Each function has an idle queue of the
// workers that reported it idle, ordered by the worker's load (least loaded
// first; among equal loads the most recently idle, whose sandbox is the
// least likely to have been evicted). A request takes the head of its
// function's queue (a warm hint) or, if the queue is empty or every worker
// in it is full, the least-loaded worker with room (random tie-break).
//
// Differences from the reference implementation: one entry per (worker,
// function) with a count, capped at the worker's capacity when it has one;
// a load change re-prioritises through position-indexed heaps, O(log n) per
// queue entry that actually moves (and nothing at all on the increase every
// Pick causes; see refresh), instead of scanning every queue; entries
// expire KeepAlive after the worker last reported the function idle; a warm
// hint that ran cold drops the pair's stale entries; failures and draining
// or departed workers never enter a queue.
type pull struct {
	cluster
	keepAlive int64 // nanoseconds; <= 0 disables expiry

	fids   map[string]int32
	fheaps [][]int32 // per function: min-heap of entry indexes
	wk     []wkeys   // per worker: its entries by stored key
	pairs  map[uint64]int32
	ents   []idleEntry
	free   []int32
	head   int32 // expiry list: oldest stamp first
	tail   int32
	seq    uint64

	// hashed selects the pull-chbl variant: when the idle queue has
	// nothing, fall back to consistent hashing with bounded loads (ring,
	// bound c) instead of least connections, so a function's new sandboxes
	// keep landing on the same few workers.
	hashed bool
	ring   ring
	c      float64

	// wait selects the pull-wait variant (see wait.go); fst holds its
	// per-function figures, indexed like fheaps.
	wait     bool
	patience float64
	fst      []fnStat
}

var (
	_ Policy      = (*pull)(nil)
	_ IdleTracker = (*pull)(nil)
)

func newPull(cfg Config) *pull {
	p := &pull{
		cluster: newCluster(cfg.Seed),
		fids:    make(map[string]int32),
		pairs:   make(map[uint64]int32),
		head:    -1,
		tail:    -1,
	}
	if cfg.KeepAlive > 0 {
		p.keepAlive = int64(cfg.KeepAlive)
	}
	p.changed = p.refresh
	return p
}

// newPullCHBL is pull whose fallback is bounded-load consistent hashing.
func newPullCHBL(cfg Config) *pull {
	p := newPull(cfg)
	p.hashed, p.ring, p.c = true, ring{vnodes: cfg.VirtualNodes}, cfg.LoadBound
	return p
}

// Name implements Policy.
func (p *pull) Name() string {
	switch {
	case p.hashed:
		return NamePullCHBL
	case p.wait:
		return NamePullWait
	}
	return NamePull
}

// Pick implements Policy.
func (p *pull) Pick(r Request) Decision {
	p.sweep(r.Now)
	if code := p.unavailable(); code != 0 {
		return Decision{Code: code}
	}
	f, known := p.fids[r.Function]
	if known {
		if e, ok := p.top(f); ok {
			w := p.ents[e].w
			p.consume(e)
			p.assign(w)
			p.fst[f].busy++
			return Decision{Code: Placed, Worker: p.ws[w].id, Warm: true}
		}
		if p.wait && r.MayWait && !r.Now.IsZero() {
			if d, ok := p.fst[f].waitFor(r.Waiting, p.patience); ok {
				return Decision{Code: Deferred, Until: r.Now.Add(d)}
			}
		}
	} else {
		f = p.fid(r.Function)
	}
	var w int32
	if p.hashed {
		w = boundedHash(&p.cluster, &p.ring, p.c, r.Function)
	} else {
		w = p.leastLoaded()
	}
	p.assign(w)
	p.fst[f].busy++
	return Decision{Code: Placed, Worker: p.ws[w].id}
}

// Completed implements Policy.
func (p *pull) Completed(c Completion) {
	p.sweep(c.Now)
	w, ok := p.lookup(c.Worker)
	if !ok {
		return
	}
	if c.WarmHint && c.Start == StartCold {
		// The warm hint was stale: the sandbox it counted on is gone, and
		// so, most likely, are the pair's other idle instances.
		if e, ok := p.pair(w, c.Function); ok && p.ents[e].count > 0 {
			p.deactivate(e)
		}
	}
	p.release(w)
	if f, ok := p.fids[c.Function]; ok {
		p.fst[f].completed(c)
	}
	if c.OK && p.ws[w].state == stateActive {
		p.enqueue(w, c.Function, c.Now)
	}
}

// Evicted implements Policy: one idle instance of the pair is removed.
func (p *pull) Evicted(worker, function string, now time.Time) {
	p.sweep(now)
	if w, ok := p.lookup(worker); ok {
		if e, ok := p.pair(w, function); ok && p.ents[e].count > 0 {
			p.consume(e)
		}
	}
}

// WorkerJoined implements Policy. Lowering a worker's capacity also lowers
// its idle counts to the new capacity.
func (p *pull) WorkerJoined(info WorkerInfo) {
	w, ok := p.join(info)
	if !ok || p.ws[w].cap <= 0 || p.wk[w].n == 0 {
		return
	}
	c := int32(p.ws[w].cap)
	clamp := func(list []int32) {
		for _, e := range list {
			if p.ents[e].count > c {
				p.ents[e].count = c
			}
		}
	}
	clamp(p.wk[w].full)
	for _, b := range p.wk[w].byKey {
		clamp(b)
	}
}

// WorkerDraining implements Policy; the worker's idle entries are dropped.
func (p *pull) WorkerDraining(id string) {
	p.cluster.WorkerDraining(id)
	if w, ok := p.lookup(id); ok && p.ws[w].state != stateActive {
		p.dropWorker(w)
	}
}

// WorkerLeft implements Policy; the worker's idle entries are dropped.
func (p *pull) WorkerLeft(id string) {
	p.cluster.WorkerLeft(id)
	if w, ok := p.lookup(id); ok {
		p.dropWorker(w)
	}
}

// Idle implements IdleTracker.
func (p *pull) Idle(worker, function string, now time.Time) {
	p.sweep(now)
	if w, ok := p.lookup(worker); ok && p.ws[w].state == stateActive {
		p.enqueue(w, function, now)
	}
}

// IdleCount implements IdleTracker.
func (p *pull) IdleCount(worker, function string) int {
	if w, ok := p.lookup(worker); ok {
		if e, ok := p.pair(w, function); ok {
			return int(p.ents[e].count)
		}
	}
	return 0
}

func pairKey(w, f int32) uint64 { return uint64(uint32(w))<<32 | uint64(uint32(f)) }

func (p *pull) pair(w int32, function string) (int32, bool) {
	f, ok := p.fids[function]
	if !ok {
		return 0, false
	}
	e, ok := p.pairs[pairKey(w, f)]
	return e, ok
}

// keyOf is the idle-queue priority of worker w.
func (p *pull) keyOf(w int32) int64 {
	if ws := &p.ws[w]; ws.eligible() {
		return int64(ws.loadKey())
	}
	return notEligible
}

// The heaps are kept exact lazily. Invariant: an entry's stored key never
// exceeds its worker's current key, and hi[w] bounds the stored keys of w's
// entries from above. A load increase (every Pick) therefore needs no work
// at all: stored keys become lower bounds, and top() refreshes a stale head
// with one sift-down before trusting it, which is exact because every other
// entry's real key is at least its stored key. A decrease below hi[w] sifts
// up, O(log n) each, only the entries whose stored key is now too high.

// wkeys holds one worker's idle entries bucketed by their stored key, so
// that a load decrease finds the entries it must move without looking at
// the others.
type wkeys struct {
	byKey [][]int32 // stored key (a load) -> entries
	full  []int32   // entries stored as notEligible
	top   int       // no entry is stored in byKey above this index
	n     int       // number of entries
}

// bucket returns the list holding entries of worker w stored at key k.
func (p *pull) bucket(w int32, k int64) *[]int32 {
	wk := &p.wk[w]
	if k == notEligible {
		return &wk.full
	}
	for int(k) >= len(wk.byKey) {
		wk.byKey = append(wk.byKey, nil)
	}
	if int(k) > wk.top {
		wk.top = int(k)
	}
	return &wk.byKey[k]
}

// wadd files entry e under its worker and stored key.
func (p *pull) wadd(e int32) {
	en := &p.ents[e]
	b := p.bucket(en.w, en.key)
	en.wpos = int32(len(*b))
	*b = append(*b, e)
	p.wk[en.w].n++
}

// wdel removes entry e from its worker's buckets.
func (p *pull) wdel(e int32) {
	en := &p.ents[e]
	b := p.bucket(en.w, en.key)
	last := len(*b) - 1
	if int(en.wpos) != last {
		moved := (*b)[last]
		(*b)[en.wpos] = moved
		p.ents[moved].wpos = en.wpos
	}
	*b = (*b)[:last]
	p.wk[en.w].n--
}

// lower moves every entry in list to stored key k (below their current
// one) and sifts each up in its function heap.
func (p *pull) lower(list *[]int32, w int32, k int64) {
	if len(*list) == 0 {
		return
	}
	dst := p.bucket(w, k)
	for _, e := range *list {
		en := &p.ents[e]
		en.key = k
		en.wpos = int32(len(*dst))
		*dst = append(*dst, e)
		p.up(p.fheaps[en.f], int(en.hpos))
	}
	*list = (*list)[:0]
}

// refresh is the cluster's change hook: it restores the invariant for
// worker w after its load, capacity or state changed.
func (p *pull) refresh(w int32) {
	for int(w) >= len(p.wk) {
		p.wk = append(p.wk, wkeys{})
	}
	wk := &p.wk[w]
	if wk.n == 0 {
		return
	}
	k := p.keyOf(w)
	if k == notEligible {
		return // an increase: stored keys stay valid lower bounds
	}
	p.lower(&wk.full, w, k)
	for b := wk.top; b > int(k); b-- {
		p.lower(&p.wk[w].byKey[b], w, k)
	}
	if p.wk[w].top > int(k) {
		p.wk[w].top = int(k)
	}
}

// top returns the best idle entry of function f whose worker has room,
// refreshing stale heads on the way.
func (p *pull) top(f int32) (int32, bool) {
	h := p.fheaps[f]
	for len(h) > 0 {
		e := h[0]
		k := p.keyOf(p.ents[e].w)
		if p.ents[e].key == k {
			return e, k != notEligible
		}
		// k > stored key: the worker got busier since it was stored.
		p.wdel(e)
		p.ents[e].key = k
		p.wadd(e)
		p.down(h, 0)
	}
	return 0, false
}

// fid returns the index of function, adding it if new.
func (p *pull) fid(function string) int32 {
	f, ok := p.fids[function]
	if !ok {
		f = int32(len(p.fheaps))
		p.fids[function] = f
		p.fheaps = append(p.fheaps, nil)
		p.fst = append(p.fst, fnStat{})
	}
	return f
}

// enqueue records one more idle instance of function on worker w.
func (p *pull) enqueue(w int32, function string, now time.Time) {
	f := p.fid(function)
	stamp := int64(0)
	if !now.IsZero() {
		stamp = now.UnixNano()
	}
	if p.tail >= 0 && stamp < p.ents[p.tail].stamp {
		stamp = p.ents[p.tail].stamp // keep the expiry list ordered
	}
	p.seq++
	pk := pairKey(w, f)
	e, ok := p.pairs[pk]
	if !ok {
		if n := len(p.free); n > 0 {
			e = p.free[n-1]
			p.free = p.free[:n-1]
		} else {
			e = int32(len(p.ents))
			p.ents = append(p.ents, idleEntry{})
		}
		p.ents[e] = idleEntry{w: w, f: f, hpos: -1, prev: -1, next: -1}
		p.pairs[pk] = e
	} else {
		p.unlink(e)
	}
	en := &p.ents[e]
	en.seq = p.seq
	en.stamp = stamp
	p.link(e)
	if en.count > 0 {
		if c := p.ws[w].cap; c <= 0 || int(en.count) < c {
			en.count++
		}
		p.up(p.fheaps[f], int(en.hpos)) // more recent: can only rise
		return
	}
	// New or dormant: file it and put it in the function's heap.
	en.count = 1
	en.key = p.keyOf(w)
	p.wadd(e)
	en.hpos = int32(len(p.fheaps[f]))
	p.fheaps[f] = append(p.fheaps[f], e)
	p.up(p.fheaps[f], len(p.fheaps[f])-1)
}

// consume removes one idle instance from entry e, which must hold one.
func (p *pull) consume(e int32) {
	if p.ents[e].count > 1 {
		p.ents[e].count--
		return
	}
	p.deactivate(e)
}

// deactivate takes entry e, which must hold instances, out of its
// function's heap and its worker's buckets, leaving it dormant: count 0,
// still indexed by pair and on the expiry list, so that the next completion
// of the pair reuses it instead of re-inserting into the pair index. Dormant
// entries are discarded by expiry like any other.
func (p *pull) deactivate(e int32) {
	en := &p.ents[e]
	h := p.fheaps[en.f]
	last := len(h) - 1
	i := int(en.hpos)
	if i != last {
		h[i] = h[last]
		p.ents[h[i]].hpos = int32(i)
	}
	p.fheaps[en.f] = h[:last]
	if i < last {
		p.fix(en.f, i)
	}
	p.wdel(e)
	en.count = 0
	en.hpos = -1
}

// drop removes entry e for good, with all its instances.
func (p *pull) drop(e int32) {
	if p.ents[e].count > 0 {
		p.deactivate(e)
	}
	p.unlink(e)
	delete(p.pairs, pairKey(p.ents[e].w, p.ents[e].f))
	p.free = append(p.free, e)
}

// dropWorker discards every entry of worker w, live or dormant. It walks the
// expiry list, O(entries), which is fine for membership changes.
func (p *pull) dropWorker(w int32) {
	for e := p.head; e >= 0; {
		next := p.ents[e].next
		if p.ents[e].w == w {
			p.drop(e)
		}
		e = next
	}
}

// sweep drops entries whose last report is more than keepAlive before now.
func (p *pull) sweep(now time.Time) {
	if p.keepAlive <= 0 || p.head < 0 || now.IsZero() {
		return
	}
	t := now.UnixNano()
	for p.head >= 0 && t-p.ents[p.head].stamp > p.keepAlive {
		p.drop(p.head)
	}
}

// link appends e to the expiry list.
func (p *pull) link(e int32) {
	p.ents[e].prev = p.tail
	p.ents[e].next = -1
	if p.tail >= 0 {
		p.ents[p.tail].next = e
	} else {
		p.head = e
	}
	p.tail = e
}

// unlink removes e from the expiry list.
func (p *pull) unlink(e int32) {
	en := &p.ents[e]
	if en.prev >= 0 {
		p.ents[en.prev].next = en.next
	} else {
		p.head = en.next
	}
	if en.next >= 0 {
		p.ents[en.next].prev = en.prev
	} else {
		p.tail = en.prev
	}
	en.prev, en.next = -1, -1
}

// less orders idle entries: lower load first, then the most recent report.
func (p *pull) less(a, b int32) bool {
	ea, eb := &p.ents[a], &p.ents[b]
	if ea.key != eb.key {
		return ea.key < eb.key
	}
	return ea.seq > eb.seq
}

func (p *pull) swap(h []int32, i, j int) {
	h[i], h[j] = h[j], h[i]
	p.ents[h[i]].hpos = int32(i)
	p.ents[h[j]].hpos = int32(j)
}

func (p *pull) up(h []int32, i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.less(h[i], h[parent]) {
			return
		}
		p.swap(h, i, parent)
		i = parent
	}
}

func (p *pull) down(h []int32, i int) bool {
	start := i
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && p.less(h[r], h[l]) {
			m = r
		}
		if !p.less(h[m], h[i]) {
			break
		}
		p.swap(h, i, m)
		i = m
	}
	return i > start
}

// fix restores function f's heap after the entry at index i changed key.
func (p *pull) fix(f int32, i int) {
	h := p.fheaps[f]
	if !p.down(h, i) {
		p.up(h, i)
	}
}
