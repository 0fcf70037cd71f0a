package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Pending-queue disciplines.
const (
	// DisciplineFIFO serves arrivals in the order they were pushed.
	DisciplineFIFO = "fifo"
	// DisciplinePriority serves the highest Class first, FIFO within a
	// class. A steady stream of high classes can starve low ones; Deadline
	// and Expire bound how long they wait.
	DisciplinePriority = "priority"
	// DisciplineSJF serves the shortest expected job first, with aging: an
	// item's rank is Enqueued + its estimated duration at push time
	// (Estimator.Estimate), lowest first, FIFO on ties. Among items queued
	// together the shortest goes first; an item with estimate d is never
	// overtaken by items pushed more than d after it, so nothing waits
	// forever. Unseen functions are ranked at the mean estimate.
	DisciplineSJF = "sjf"
)

// Disciplines returns the pending-queue discipline names, sorted.
func Disciplines() []string {
	return []string{DisciplineFIFO, DisciplinePriority, DisciplineSJF}
}

// ErrPendingFull is returned (wrapped) by Pending.Push when the queue is at
// capacity; a caller answering HTTP should turn it into 429 Too Many
// Requests.
var ErrPendingFull = errors.New("pending queue full")

// ErrDuplicateID is returned (wrapped) by Pending.Push for an ID already
// queued.
var ErrDuplicateID = errors.New("pending item id already queued")

// ErrUnknownDiscipline is returned (wrapped) by NewPending for an unknown
// discipline name.
var ErrUnknownDiscipline = errors.New("unknown pending discipline")

// Item is one arrival waiting for capacity.
type Item struct {
	// ID identifies the item (the activation id) for Remove; it must be
	// unique among queued items. Empty IDs are allowed but cannot be
	// removed by ID.
	ID string
	// Function is the function to run (used by sjf).
	Function string
	// Class is the priority class; higher is more important (used by
	// priority).
	Class int
	// Enqueued is when the item arrived; sjf ranks by it, so set it.
	Enqueued time.Time
	// Deadline is when the item should be given up; zero means never.
	Deadline time.Time
}

type pslot struct {
	item  Item
	rank  int64  // sjf: Enqueued + estimate, nanoseconds
	seq   uint64 // push order
	dl    int64  // deadline, UnixNano
	opos  int32  // index in the order heap
	dpos  int32  // index in the deadline heap, -1 without deadline
	inUse bool
}

// Pending is a bounded queue of arrivals waiting for capacity, ordered by
// its discipline. Push, Pop, Remove and Expire cost O(log n); Peek and Len
// O(1).
type Pending struct {
	disc  string
	cap   int
	est   *Estimator
	slots []pslot
	free  []int32
	order []int32 // heap by discipline
	dls   []int32 // heap by deadline
	ids   map[string]int32
	seq   uint64
}

// NewPending returns an empty queue holding at most capacity items, served
// by the named discipline (fifo, priority or sjf). sjf needs est, which the
// caller feeds with completions; the other disciplines ignore it.
func NewPending(discipline string, capacity int, est *Estimator) (*Pending, error) {
	d := strings.ToLower(strings.TrimSpace(discipline))
	switch d {
	case DisciplineFIFO, DisciplinePriority:
	case DisciplineSJF:
		if est == nil {
			return nil, fmt.Errorf("%w: sjf needs an Estimator", ErrConfig)
		}
	default:
		return nil, fmt.Errorf("%w %q: known disciplines are %s", ErrUnknownDiscipline, discipline, strings.Join(Disciplines(), ", "))
	}
	if capacity <= 0 {
		return nil, fmt.Errorf("%w: pending capacity %d must be positive", ErrConfig, capacity)
	}
	return &Pending{disc: d, cap: capacity, est: est, ids: make(map[string]int32)}, nil
}

// Len returns the number of queued items.
func (q *Pending) Len() int { return len(q.order) }

// Push queues it. It fails with ErrPendingFull when the queue is full and
// with ErrDuplicateID when an item with the same non-empty ID is queued.
func (q *Pending) Push(it Item) error {
	if len(q.order) >= q.cap {
		return fmt.Errorf("%w: %d of %d slots taken (%s)", ErrPendingFull, len(q.order), q.cap, q.disc)
	}
	if it.ID != "" {
		if _, dup := q.ids[it.ID]; dup {
			return fmt.Errorf("%w: %q", ErrDuplicateID, it.ID)
		}
	}
	var s int32
	if n := len(q.free); n > 0 {
		s = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		s = int32(len(q.slots))
		q.slots = append(q.slots, pslot{})
	}
	q.seq++
	sl := pslot{item: it, seq: q.seq, dpos: -1, inUse: true}
	if q.disc == DisciplineSJF {
		est, _ := q.est.Estimate(it.Function)
		sl.rank = nanos(it.Enqueued) + int64(est)
	}
	if !it.Deadline.IsZero() {
		sl.dl = it.Deadline.UnixNano()
	}
	q.slots[s] = sl
	if it.ID != "" {
		q.ids[it.ID] = s
	}
	q.slots[s].opos = int32(len(q.order))
	q.order = append(q.order, s)
	q.up(q.order, len(q.order)-1, q.orderLess, opos)
	if !it.Deadline.IsZero() {
		q.slots[s].dpos = int32(len(q.dls))
		q.dls = append(q.dls, s)
		q.up(q.dls, len(q.dls)-1, q.dlLess, dpos)
	}
	return nil
}

// Peek returns the item Pop would return, without removing it.
func (q *Pending) Peek() (Item, bool) {
	if len(q.order) == 0 {
		return Item{}, false
	}
	return q.slots[q.order[0]].item, true
}

// Pop removes and returns the next item by the discipline.
func (q *Pending) Pop() (Item, bool) {
	if len(q.order) == 0 {
		return Item{}, false
	}
	s := q.order[0]
	it := q.slots[s].item
	q.removeSlot(s)
	return it, true
}

// Remove removes the item with the given ID; it reports whether it was
// queued.
func (q *Pending) Remove(id string) bool {
	if id == "" {
		return false
	}
	s, ok := q.ids[id]
	if !ok {
		return false
	}
	q.removeSlot(s)
	return true
}

// Expire removes and returns the items whose Deadline is at or before now,
// earliest deadline first.
func (q *Pending) Expire(now time.Time) []Item {
	t := nanos(now)
	var out []Item
	for len(q.dls) > 0 && q.slots[q.dls[0]].dl <= t {
		s := q.dls[0]
		out = append(out, q.slots[s].item)
		q.removeSlot(s)
	}
	return out
}

// Items returns the queued items in service order (for status pages and
// tests; O(n log n)).
func (q *Pending) Items() []Item {
	idx := append([]int32(nil), q.order...)
	sort.Slice(idx, func(i, j int) bool { return q.orderLess(idx[i], idx[j]) })
	out := make([]Item, len(idx))
	for i, s := range idx {
		out[i] = q.slots[s].item
	}
	return out
}

func (q *Pending) removeSlot(s int32) {
	sl := &q.slots[s]
	q.del(&q.order, int(sl.opos), q.orderLess, opos)
	if sl.dpos >= 0 {
		q.del(&q.dls, int(sl.dpos), q.dlLess, dpos)
	}
	if sl.item.ID != "" {
		delete(q.ids, sl.item.ID)
	}
	*sl = pslot{}
	q.free = append(q.free, s)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (q *Pending) orderLess(a, b int32) bool {
	sa, sb := &q.slots[a], &q.slots[b]
	switch q.disc {
	case DisciplinePriority:
		if sa.item.Class != sb.item.Class {
			return sa.item.Class > sb.item.Class
		}
	case DisciplineSJF:
		if sa.rank != sb.rank {
			return sa.rank < sb.rank
		}
	}
	return sa.seq < sb.seq
}

func (q *Pending) dlLess(a, b int32) bool {
	sa, sb := &q.slots[a], &q.slots[b]
	if sa.dl != sb.dl {
		return sa.dl < sb.dl
	}
	return sa.seq < sb.seq
}

// posFn selects which heap index of a slot a heap maintains.
type posFn func(sl *pslot) *int32

func opos(sl *pslot) *int32 { return &sl.opos }
func dpos(sl *pslot) *int32 { return &sl.dpos }

func (q *Pending) swap(h []int32, i, j int, pos posFn) {
	h[i], h[j] = h[j], h[i]
	*pos(&q.slots[h[i]]) = int32(i)
	*pos(&q.slots[h[j]]) = int32(j)
}

func (q *Pending) up(h []int32, i int, less func(a, b int32) bool, pos posFn) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(h[i], h[p]) {
			return
		}
		q.swap(h, i, p, pos)
		i = p
	}
}

func (q *Pending) down(h []int32, i int, less func(a, b int32) bool, pos posFn) bool {
	start, n := i, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			break
		}
		q.swap(h, i, m, pos)
		i = m
	}
	return i > start
}

// del removes index i from heap *hp.
func (q *Pending) del(hp *[]int32, i int, less func(a, b int32) bool, pos posFn) {
	h := *hp
	last := len(h) - 1
	if i != last {
		q.swap(h, i, last, pos)
	}
	*pos(&q.slots[h[last]]) = -1
	h = h[:last]
	*hp = h
	if i < last {
		if !q.down(h, i, less, pos) {
			q.up(h, i, less, pos)
		}
	}
}
