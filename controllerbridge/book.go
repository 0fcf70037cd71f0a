package controllerbridge

import (
	"container/heap"
	"sync"
	"sync/atomic"
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
	key     string         // function and Idempotency-Key (see idemKey); "" without one
	res     *topics.Result // nil while pending, and once dropped
	dropped bool           // its result went to its blocking request and was not kept
	size    int64          // bytes it is accounted for in the book
	expires time.Time
	idx     int // position in the expiry heap
}

// entryBytes is what the book accounts for one remembered activation besides
// its result: the struct, its map entries and heap slot, rounded up.
const entryBytes = 256

// resultBytes is what the book accounts for keeping res: its variable-length
// fields and the fixed part of the struct.
func resultBytes(res *topics.Result) int64 {
	return int64(len(res.ID)+len(res.Function)+len(res.Body)+len(res.BodyEncoding)+len(res.ContentType)+
		len(res.Worker)+len(res.Start)+len(res.Reason)+len(res.Error)+len(res.Source)) + 192
}

// idemKey is the book's key for an Idempotency-Key of a function: the same
// key sent for two functions names two activations.
func idemKey(fn, key string) string { return fn + "\x00" + key }

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
// remembered for GET /activations/<id> and for retries with an
// Idempotency-Key. The first result for an id wins; later ones are counted
// and ignored. It is bounded by count and by bytes: beyond either, the
// activations closest to expiry (for results, the oldest) are forgotten
// first. A blocking request without an idempotency key drops its result as
// soon as it has it (drop): nobody can ask for it again. It holds no
// goroutine and no clock: callers pass the time.
type book struct {
	ttl        time.Duration
	maxActs    int
	maxBytes   int64
	maxWaiting int

	mu      sync.Mutex
	waiters map[string]waitList
	// nWaiting counts the waiters. It changes under mu but is read
	// without it: admission reads it twice per request.
	nWaiting atomic.Int64
	acts     map[string]*activation
	keys     map[string]*activation // by idemKey
	expiry   expiryHeap
	bytes    int64 // sum of the sizes of acts
	evicted  int64 // activations forgotten early because the store was full
}

// waitList holds the requests waiting for one activation's result: almost
// always one, kept in first without a slice of its own; more holds the
// others (requests with the same Idempotency-Key).
type waitList struct {
	first chan *topics.Result
	more  []chan *topics.Result
}

// len is the number of waiters in l.
func (l waitList) len() int {
	if l.first == nil {
		return 0
	}
	return 1 + len(l.more)
}

// send hands res to every waiter of l; each channel has room for it.
func (l waitList) send(res *topics.Result) {
	if l.first != nil {
		l.first <- res
	}
	for _, c := range l.more {
		c <- res
	}
}

// without returns l less the waiter ch, and whether ch was in it.
func (l waitList) without(ch <-chan *topics.Result) (waitList, bool) {
	if l.first != nil && (<-chan *topics.Result)(l.first) == ch {
		if len(l.more) == 0 {
			return waitList{}, true
		}
		return waitList{first: l.more[0], more: l.more[1:]}, true
	}
	for i, c := range l.more {
		if (<-chan *topics.Result)(c) == ch {
			more := append(l.more[:i:i], l.more[i+1:]...)
			return waitList{first: l.first, more: more}, true
		}
	}
	return l, false
}

func newBook(ttl time.Duration, maxActs int, maxBytes int64, maxWaiting int) *book {
	return &book{
		ttl:        ttl,
		maxActs:    maxActs,
		maxBytes:   maxBytes,
		maxWaiting: maxWaiting,
		waiters:    map[string]waitList{},
		acts:       map[string]*activation{},
		keys:       map[string]*activation{},
	}
}

// register remembers a pending activation until pendingUntil (+ TTL) and,
// when blocking, registers a waiter for its result. ok is false when too many
// requests are already waiting; nothing is registered then.
func (b *book) register(id string, blocking bool, now, pendingUntil time.Time) (ch <-chan *topics.Result, ok bool) {
	cl, ok := b.claim(id, "", blocking, now, pendingUntil)
	return cl.ch, ok
}

// claimed is what claim did.
type claimed struct {
	id       string                // the activation's id: the new one, or the one key already named
	existing bool                  // key already named a remembered activation: publish nothing
	res      *topics.Result        // existing: its result, when it has come
	ch       <-chan *topics.Result // blocking and no result yet: receives it (nil if it was never published)
}

// claim is register for a request that may carry an idempotency key (key
// from idemKey, or ""). When key names an activation still remembered, that
// activation is the request's: nothing new is registered, and a blocking
// request without the result yet waits for the same result. Otherwise id is
// registered under key. ok is false when too many requests are already
// waiting.
func (b *book) claim(id, key string, blocking bool, now, pendingUntil time.Time) (cl claimed, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(now)
	if key != "" {
		if a := b.keys[key]; a != nil {
			cl = claimed{id: a.id, existing: true, res: a.res}
			if blocking && a.res == nil {
				if b.waiting() >= b.maxWaiting {
					return claimed{}, false
				}
				cl.ch = b.waitLocked(a.id)
			}
			return cl, true
		}
	}
	if blocking && b.waiting() >= b.maxWaiting {
		return claimed{}, false
	}
	if old := b.acts[id]; old != nil {
		b.removeLocked(old)
	}
	cl.id = id
	if b.maxActs > 0 {
		a := &activation{id: id, key: key, expires: pendingUntil.Add(b.ttl), size: entryBytes + int64(len(id)+len(key))}
		b.evictLocked(1, a.size)
		heap.Push(&b.expiry, a)
		b.acts[id] = a
		if key != "" {
			b.keys[key] = a
		}
		b.bytes += a.size
	}
	if blocking {
		cl.ch = b.waitLocked(id)
	}
	return cl, true
}

// waitLocked adds a waiter for the result of id.
func (b *book) waitLocked(id string) <-chan *topics.Result {
	c := make(chan *topics.Result, 1)
	if l, ok := b.waiters[id]; ok {
		l.more = append(l.more, c)
		b.waiters[id] = l
	} else {
		b.waiters[id] = waitList{first: c}
	}
	b.nWaiting.Add(1)
	return c
}

// deliver records the result of an activation and hands it to its waiters.
func (b *book) deliver(res *topics.Result, now time.Time) outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(now)
	a := b.acts[res.ID]
	if a != nil {
		if a.res != nil || a.dropped {
			return outDuplicate
		}
		a.res = res
		sz := resultBytes(res)
		a.size += sz
		b.bytes += sz
		a.expires = now.Add(b.ttl)
		heap.Fix(&b.expiry, a.idx)
	}
	ws, waited := b.waiters[res.ID]
	if waited {
		delete(b.waiters, res.ID)
		b.nWaiting.Add(-int64(ws.len()))
		ws.send(res) // buffered, and each waiter gets at most one result
	}
	if a != nil {
		b.evictLocked(0, 0)
	}
	switch {
	case waited:
		return outDelivered
	case a != nil:
		return outStored
	}
	return outUnknown
}

// drop forgets the result of id, which its blocking request has answered
// with, unless an idempotency key may still ask for it. What remains is a
// small mark, so that a duplicate result is still recognised.
func (b *book) drop(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.acts[id]
	if a == nil || a.key != "" || a.res == nil {
		return
	}
	sz := resultBytes(a.res)
	a.res, a.dropped = nil, true
	a.size -= sz
	b.bytes -= sz
}

// unwait removes the waiter ch of id, if it is still there: its request
// stopped waiting. The activation stays remembered, so a result that comes
// later can still be fetched with GET /activations/<id>.
func (b *book) unwait(id string, ch <-chan *topics.Result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ws, ok := b.waiters[id]
	if !ok {
		return
	}
	ws, ok = ws.without(ch)
	if ok {
		b.nWaiting.Add(-1)
	}
	if ws.len() == 0 {
		delete(b.waiters, id)
	} else {
		b.waiters[id] = ws
	}
}

// forget removes every trace of id: its arrival was never published. Other
// requests waiting for it (with the same idempotency key) receive nil.
func (b *book) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ws := b.waiters[id]
	ws.send(nil)
	b.nWaiting.Add(-int64(ws.len()))
	delete(b.waiters, id)
	if a := b.acts[id]; a != nil {
		b.removeLocked(a)
	}
}

// lookup returns the result of id (nil while pending) and whether id is
// remembered with its result, if any: a result dropped once its blocking
// request had it is not.
func (b *book) lookup(id string, now time.Time) (res *topics.Result, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expireLocked(now)
	a := b.acts[id]
	if a == nil || a.dropped {
		return nil, false
	}
	return a.res, true
}

// removeLocked forgets a.
func (b *book) removeLocked(a *activation) {
	if a.idx >= 0 {
		heap.Remove(&b.expiry, a.idx)
	}
	delete(b.acts, a.id)
	if a.key != "" && b.keys[a.key] == a {
		delete(b.keys, a.key)
	}
	b.bytes -= a.size
}

// expireLocked forgets the activations whose time is up.
func (b *book) expireLocked(now time.Time) {
	for len(b.expiry) > 0 && !b.expiry[0].expires.After(now) {
		b.removeLocked(b.expiry[0])
	}
}

// evictLocked forgets the activations closest to expiry (for results, the
// oldest) until the book has room for n more activations of size more bytes.
func (b *book) evictLocked(n int, size int64) {
	for (len(b.acts)+n > b.maxActs || b.bytes+size > b.maxBytes) && len(b.expiry) > 0 {
		b.removeLocked(b.expiry[0])
		b.evicted++
	}
}

// bookStats is a snapshot of the book's sizes.
type bookStats struct {
	Waiting     int   `json:"waiting"`
	Activations int   `json:"activations"`
	Bytes       int64 `json:"activation_bytes"`
	Evicted     int64 `json:"activations_evicted"`
}

func (b *book) stats() bookStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bookStats{Waiting: b.waiting(), Activations: len(b.acts), Bytes: b.bytes, Evicted: b.evicted}
}

// waiting is how many requests are waiting for a result.
func (b *book) waiting() int { return int(b.nWaiting.Load()) }
