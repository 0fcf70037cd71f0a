package scheduler

import (
	"container/heap"
	"time"
)

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
// out; each job knows its index (hidx), so removal on completion is
// O(log n). Use push, remove and due; the heap.Interface methods are for
// container/heap.
type timeoutHeap []*job

func (h timeoutHeap) Len() int           { return len(h) }
func (h timeoutHeap) Less(i, j int) bool { return h[i].timeout.Before(h[j].timeout) }
func (h timeoutHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}

func (h *timeoutHeap) Push(x any) {
	j := x.(*job)
	j.hidx = len(*h)
	*h = append(*h, j)
}

func (h *timeoutHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.hidx = -1
	return j
}

func (h *timeoutHeap) push(j *job) { heap.Push(h, j) }

// remove takes j out of the heap if it is in it.
func (h *timeoutHeap) remove(j *job) {
	if i := j.hidx; i >= 0 && i < len(*h) && (*h)[i] == j {
		heap.Remove(h, i)
	}
}

// due pops the first job whose timeout is at or before now.
func (h *timeoutHeap) due(now time.Time) *job {
	if len(*h) == 0 || (*h)[0].timeout.After(now) {
		return nil
	}
	return heap.Pop(h).(*job)
}
