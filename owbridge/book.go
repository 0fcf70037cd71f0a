package owbridge

import (
	"sync"
	"time"

	"github.com/pullsched/pullsched/topics"
)

// entry is what the bridge remembers of one activation it took from a
// controller.
type entry struct {
	id         string // OpenWhisk activation id
	fn         string // pullsched function key
	controller string // rootControllerIndex: acks go to <prefix>completed<controller>
	blocking   bool
	transid    TransactionID
	namespace  string // invocation namespace
	subject    string
	action     FullyQualifiedEntityName
	arrived    time.Time
	deadline   time.Time
	health     bool // a health test, sent straight to an invoker

	worker     string       // the invoker it was handed to; "" until then
	scheduler  string       // the scheduler replica that placed it
	assignedAt time.Time    // when it was handed to the invoker
	answered   bool         // the controller has had (or is being sent) an ack that frees its slot
	answeredAt time.Time    // when answered was set
	status     int          // response status code seen in a result ack; -1 until then
	start      topics.Start // from a result ack's initTime
}

// book holds the activations in flight, by OpenWhisk activation id.
type book struct {
	mu sync.Mutex
	m  map[string]*entry
}

func newBook() *book { return &book{m: map[string]*entry{}} }

// add remembers e unless its id is known; it returns the entry kept,
// whether it is e, and whether the kept entry was handed to an invoker or
// answered already (read under the lock: only the id, times and the
// activation's own members of an entry may be read without it).
func (b *book) add(e *entry) (kept *entry, fresh, handled bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.m[e.id]; old != nil {
		return old, false, old.answered || old.worker != ""
	}
	e.status = -1
	b.m[e.id] = e
	return e, true, false
}

// with calls fn with the entry of id (nil if unknown) under the lock.
func (b *book) with(id string, fn func(e *entry)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(b.m[id])
}

// inflight counts, per worker and placing scheduler, activations handed
// over and not answered.
func (b *book) inflight() map[string]map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]map[string]int{}
	for _, e := range b.m {
		if e.worker != "" && !e.answered && !e.health {
			if out[e.worker] == nil {
				out[e.worker] = map[string]int{}
			}
			out[e.worker][e.scheduler]++
		}
	}
	return out
}

// answer marks e answered at now. The caller holds the lock (with).
func (e *entry) answer(now time.Time) {
	if !e.answered {
		e.answered, e.answeredAt = true, now
	}
}

// sweep forgets activations answered more than dedupe ago (long enough
// to recognise re-delivered acks and assignments), and the others once
// their deadline passed more than grace ago.
func (b *book) sweep(now time.Time, dedupe, grace time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, e := range b.m {
		if e.answered && now.Sub(e.answeredAt) > dedupe || now.Sub(e.deadline) > grace {
			delete(b.m, id)
		}
	}
}

func (b *book) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
