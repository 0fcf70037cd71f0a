package controllerbridge

import (
	"container/heap"
	"sync"
	"time"

	"github.com/pullsched/pullsched/topics"
)

// outcome says what became of a result that arrived on the results topic.
type outcome string

const (
	outDelivered outcome = "delivered" // handed to a waiting request
	outStored    outcome = "stored"    // kept for GET /activations (non-blocking, or its request gave up)
	outDuplicate outcome = "duplicate" // the activation already had a result: ignored
	outUnknown   outcome = "unknown"   // no such activation here (expired, forgotten, or not ours): ignored
)

// activation is one remembered activation: pending until its first result.
type activation struct {
	id      string
	res     *topics.Result // nil while pending
	expires time.Time
	idx     int // position in the expiry heap
}

// expiryHeap orders activations by expiry, earliest first.
type expiryHeap []*activation

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *expiryHeap) Push(x any) {
	a := x.(*activation)
	a.idx = len(*h)
	*h = append(*h, a)
}
func (h *expiryHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	a.idx = -1
	return a
}

// book keeps the requests waiting for results and the activations
// remembered for GET /activations/<id>. The first result for an id wins;
// later ones are counted and ignored. It holds no goroutine and no clock:
// callers pass the time.
type book struct {
	ttl        time.Duration
	maxActs    int
	maxWaiting int

	mu      sync.Mutex
	waiters map[string]chan *topics.Result
	acts    map[string]*activation
	expiry  expiryHeap
	evicted int64 // activations forgotten early because the store was full
}

func newBook(ttl time.Duration, maxActs, maxWaiting int) *book {
	return &book{
		ttl:        ttl,
		maxActs:    maxActs,
		maxWaiting: maxWaiting,
		waiters:    map[string]chan *topics.Result{},
		acts:       map[string]*activation{},
	}
}

// register remembers a pending activation until pendingUntil (+ TTL) and,
// when blocking, registers a waiter for its result. ok is false when too many
// requests are already waiting; nothing is registered then.
func (b *book) register(id string, blocking bool, now, pendingUntil time.Time) (ch <-chan *topics.Result, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if blocking && len(b.waiters) >= b.maxWaiting {
		return nil, false
	}
	b.expireLocked(now)
	if old := b.acts[id]; old != nil {
		heap.Remove(&b.expiry, old.idx)
		delete(b.acts, id)
	}
	for len(b.acts) >= b.maxActs && len(b.expiry) > 0 {
		a := heap.Pop(&b.expiry).(*activation)
		delete(b.acts, a.id)
		b.evicted++
	}
	if b.maxActs > 0 {
		a := &activation{id: id, expires: pendingUntil.Add(b.ttl)}
		heap.Push(&b.expiry, a)
		b.acts[id] = a
	}
	if !blocking {
		return nil, true
	}
	c := make(chan *topics.Result, 1)
	b.waiters[id] = c
	return c, true
}

// deliver records the result of an activation and hands it to its waiter.
func (b *book) deliver(res *topics.Result, now time.Time) outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(now)
	a := b.acts[res.ID]
	if a != nil {
		if a.res != nil {
			return outDuplicate
		}
		a.res = res
		a.expires = now.Add(b.ttl)
		heap.Fix(&b.expiry, a.idx)
	}
	if c, ok := b.waiters[res.ID]; ok {
		delete(b.waiters, res.ID)
		c <- res // buffered, and each waiter gets at most one result
		return outDelivered
	}
	if a != nil {
		return outStored
	}
	return outUnknown
}

// unwait removes the waiter of id, if any: its request stopped waiting. The
// activation stays remembered, so a result that comes later can still be
// fetched with GET /activations/<id>.
func (b *book) unwait(id string) {
	b.mu.Lock()
	delete(b.waiters, id)
	b.mu.Unlock()
}

// forget removes every trace of id: its arrival was never published.
func (b *book) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.waiters, id)
	if a := b.acts[id]; a != nil {
		heap.Remove(&b.expiry, a.idx)
		delete(b.acts, id)
	}
}

// lookup returns the result of id (nil while pending) and whether id is
// remembered at all.
func (b *book) lookup(id string, now time.Time) (res *topics.Result, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(now)
	a := b.acts[id]
	if a == nil {
		return nil, false
	}
	return a.res, true
}

// expireLocked forgets the activations whose time is up.
func (b *book) expireLocked(now time.Time) {
	for len(b.expiry) > 0 && !b.expiry[0].expires.After(now) {
		a := heap.Pop(&b.expiry).(*activation)
		delete(b.acts, a.id)
	}
}

// bookStats is a snapshot of the book's sizes.
type bookStats struct {
	Waiting     int   `json:"waiting"`
	Activations int   `json:"activations"`
	Evicted     int64 `json:"activations_evicted"`
}

func (b *book) stats() bookStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bookStats{Waiting: len(b.waiters), Activations: len(b.acts), Evicted: b.evicted}
}

// waiting is how many requests are waiting for a result.
func (b *book) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}
