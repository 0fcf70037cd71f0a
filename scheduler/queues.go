package scheduler

import (
	"sync"
	"time"
)

// inbox is an unbounded queue of work for the loop goroutine. Put never
// blocks, so producer callbacks and reader goroutines can hand work to the
// loop without waiting for it (the loop itself may be waiting for the
// producer's buffer to drain: a bounded channel here could deadlock).
type inbox struct {
	mu  sync.Mutex
	q   []func()
	sig chan struct{}
}

func newInbox() *inbox { return &inbox{sig: make(chan struct{}, 1)} }

// put queues f and wakes the loop.
func (b *inbox) put(f func()) {
	b.mu.Lock()
	b.q = append(b.q, f)
	b.mu.Unlock()
	select {
	case b.sig <- struct{}{}:
	default:
	}
}

// take returns everything queued, reusing buf for the next round.
func (b *inbox) take(buf []func()) []func() {
	b.mu.Lock()
	q := b.q
	b.q = buf[:0]
	b.mu.Unlock()
	return q
}

// recentSet remembers the last n ids added, to recognise re-deliveries.
type recentSet struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecentSet(n int) *recentSet {
	return &recentSet{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (s *recentSet) has(id string) bool {
	_, ok := s.ids[id]
	return ok
}

func (s *recentSet) add(id string) {
	if len(s.ring) == 0 || s.has(id) {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.ids[id] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

// timeoutHeap orders outstanding jobs by the time their assignment times
// out; each job knows its index, so removal on completion is O(log n).
type timeoutHeap []*job

func (h timeoutHeap) less(i, j int) bool { return h[i].timeout.Before(h[j].timeout) }

func (h timeoutHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}

func (h *timeoutHeap) push(j *job) {
	j.hidx = len(*h)
	*h = append(*h, j)
	h.up(j.hidx)
}

// remove takes j out of the heap if it is in it.
func (h *timeoutHeap) remove(j *job) {
	i := j.hidx
	if i < 0 || i >= len(*h) || (*h)[i] != j {
		return
	}
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	j.hidx = -1
	if i < last {
		if !h.down(i) {
			h.up(i)
		}
	}
}

// due pops the first job whose timeout is at or before now.
func (h *timeoutHeap) due(now time.Time) *job {
	if len(*h) == 0 || (*h)[0].timeout.After(now) {
		return nil
	}
	j := (*h)[0]
	h.remove(j)
	return j
}

func (h timeoutHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timeoutHeap) down(i int) bool {
	start, n := i, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
