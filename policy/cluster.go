package policy

import (
	"math/rand/v2"
)

// Worker states.
const (
	stateActive uint8 = iota
	stateDraining
	stateLeft
)

// wstate is the cluster's book on one worker. Worker IDs are interned to
// small ints (the index into cluster.ws) when they first join.
type wstate struct {
	id    string
	state uint8
	cap   int // max load, 0 = unlimited
	own   int // this policy's in-flight
	ext   int // in-flight reported for other replicas

	counted int   // contribution to cluster.total (load if active, else 0)
	eligPos int32 // index in cluster.elig, -1 if not eligible
	lcPos   int32 // index in its least-connections bucket, -1 if absent
	lcLoad  int   // the bucket it sits in
}

func (w *wstate) load() int { return w.own + w.ext }

// maxLoadKey caps the load used as an ordering key (least-connections
// buckets, idle-queue keys), so that an absurd reported load cannot make
// those structures huge; loads above it all rank equal.
const maxLoadKey = 1<<16 - 1

// loadKey is the worker's load as an ordering key.
func (w *wstate) loadKey() int { return min(w.load(), maxLoadKey) }

// eligible reports whether the worker can take one more request.
func (w *wstate) eligible() bool {
	return w.state == stateActive && (w.cap <= 0 || w.load() < w.cap)
}

// cluster is the worker bookkeeping shared by every policy: membership,
// loads, capacity, the set of workers with room (for uniform random choice)
// and a least-connections structure. All updates are O(1) except when
// ExternalLoad jumps over many empty load levels.
type cluster struct {
	ids    map[string]int32
	ws     []wstate
	elig   []int32 // active workers with room, in no particular order
	lc     lcSet
	active int // number of active workers
	total  int // sum of load over active workers
	// members counts membership changes (join, drain, leave, rejoin), so
	// that derived structures such as hash rings know when to rebuild.
	members uint64
	rng     *rand.Rand
	// changed, when set, is called after any change of a worker's load,
	// capacity or state (pull uses it to re-prioritise idle queues).
	changed func(w int32)
}

func newCluster(seed int64) cluster {
	return cluster{
		ids: make(map[string]int32),
		rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
	}
}

// lookup returns the interned index of a known worker.
func (c *cluster) lookup(id string) (int32, bool) {
	w, ok := c.ids[id]
	return w, ok
}

// update re-derives the eligibility, least-connections position and the
// total-load contribution of worker w after any change to it.
func (c *cluster) update(w int32) {
	ws := &c.ws[w]
	contrib := 0
	if ws.state == stateActive {
		contrib = ws.load()
	}
	c.total += contrib - ws.counted
	ws.counted = contrib

	if ws.eligible() {
		if ws.eligPos < 0 {
			ws.eligPos = int32(len(c.elig))
			c.elig = append(c.elig, w)
		}
		if ws.lcPos < 0 {
			c.lc.add(c.ws, w, ws.loadKey())
		} else if ws.lcLoad != ws.loadKey() {
			c.lc.remove(c.ws, w)
			c.lc.add(c.ws, w, ws.loadKey())
		}
	} else {
		if ws.eligPos >= 0 {
			last := c.elig[len(c.elig)-1]
			c.elig[ws.eligPos] = last
			c.ws[last].eligPos = ws.eligPos
			c.elig = c.elig[:len(c.elig)-1]
			ws.eligPos = -1
		}
		if ws.lcPos >= 0 {
			c.lc.remove(c.ws, w)
		}
	}
	if c.changed != nil {
		c.changed(w)
	}
}

// setState moves worker w to state s and keeps the active count.
func (c *cluster) setState(w int32, s uint8) {
	ws := &c.ws[w]
	if ws.state == s {
		return
	}
	if ws.state == stateActive {
		c.active--
	}
	if s == stateActive {
		c.active++
	}
	ws.state = s
	c.members++
	c.update(w)
}

// join adds a worker or updates a known one; it returns the worker's index,
// or false for an empty ID.
func (c *cluster) join(info WorkerInfo) (int32, bool) {
	if info.ID == "" {
		return 0, false
	}
	capacity := info.Capacity
	if capacity < 0 {
		capacity = 0
	}
	w, ok := c.ids[info.ID]
	if !ok {
		w = int32(len(c.ws))
		c.ids[info.ID] = w
		c.ws = append(c.ws, wstate{id: info.ID, state: stateLeft, cap: capacity, eligPos: -1, lcPos: -1})
		c.setState(w, stateActive)
		return w, true
	}
	c.ws[w].cap = capacity
	if c.ws[w].state != stateActive {
		c.setState(w, stateActive)
	} else {
		c.update(w)
	}
	return w, true
}

// assign counts one more in-flight request on worker w.
func (c *cluster) assign(w int32) {
	c.ws[w].own++
	c.update(w)
}

// release counts one in-flight request on worker w as done. It never goes
// below zero, so a stray completion cannot corrupt the books.
func (c *cluster) release(w int32) {
	if c.ws[w].own > 0 {
		c.ws[w].own--
		c.update(w)
	}
}

// setExternal records the load other replicas put on worker w.
func (c *cluster) setExternal(w int32, n int) {
	if n < 0 {
		n = 0
	}
	if c.ws[w].ext == n {
		return
	}
	c.ws[w].ext = n
	c.update(w)
}

// unavailable returns the Code for a Pick that cannot be placed, or 0 if
// some worker has room.
func (c *cluster) unavailable() Code {
	if c.active == 0 {
		return NoWorkers
	}
	if len(c.elig) == 0 {
		return NoCapacity
	}
	return 0
}

// leastLoaded returns an eligible worker with the lowest load, breaking ties
// uniformly at random. It must only be called when some worker is eligible.
func (c *cluster) leastLoaded() int32 {
	b := c.lc.buckets[c.lc.min]
	if len(b) == 1 {
		return b[0]
	}
	return b[c.rng.IntN(len(b))]
}

// randomEligible returns a uniformly random eligible worker. It must only be
// called when some worker is eligible.
func (c *cluster) randomEligible() int32 {
	return c.elig[c.rng.IntN(len(c.elig))]
}

// The common Policy methods, shared by embedding.

// WorkerJoined implements Policy.
func (c *cluster) WorkerJoined(info WorkerInfo) { c.join(info) }

// WorkerDraining implements Policy.
func (c *cluster) WorkerDraining(id string) {
	if w, ok := c.ids[id]; ok && c.ws[w].state == stateActive {
		c.setState(w, stateDraining)
	}
}

// WorkerLeft implements Policy.
func (c *cluster) WorkerLeft(id string) {
	if w, ok := c.ids[id]; ok {
		c.setState(w, stateLeft)
	}
}

// ExternalLoad implements Policy.
func (c *cluster) ExternalLoad(id string, inflight int) {
	if w, ok := c.ids[id]; ok {
		c.setExternal(w, inflight)
	}
}

// InFlight implements Policy.
func (c *cluster) InFlight(id string) int {
	if w, ok := c.ids[id]; ok {
		return c.ws[w].own
	}
	return 0
}

// lcSet keeps eligible workers in buckets by load so that the least-loaded
// one is found, and a load change applied, in O(1): a load moves by one per
// assignment or completion, so the minimum moves at most one bucket at a
// time. Positions inside buckets are indexed for O(1) removal.
type lcSet struct {
	buckets [][]int32
	min     int // lowest non-empty bucket when n > 0
	n       int
}

func (s *lcSet) add(ws []wstate, w int32, load int) {
	for len(s.buckets) <= load {
		s.buckets = append(s.buckets, nil)
	}
	b := s.buckets[load]
	ws[w].lcPos = int32(len(b))
	ws[w].lcLoad = load
	s.buckets[load] = append(b, w)
	if s.n == 0 || load < s.min {
		s.min = load
	}
	s.n++
}

func (s *lcSet) remove(ws []wstate, w int32) {
	load, pos := ws[w].lcLoad, ws[w].lcPos
	b := s.buckets[load]
	last := b[len(b)-1]
	b[pos] = last
	ws[last].lcPos = pos
	s.buckets[load] = b[:len(b)-1]
	ws[w].lcPos = -1
	s.n--
	if s.n == 0 {
		s.min = 0
		return
	}
	for len(s.buckets[s.min]) == 0 {
		s.min++
	}
}
