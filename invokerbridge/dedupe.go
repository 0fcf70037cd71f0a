package invokerbridge

import (
	"sync"

	"github.com/pullsched/pullsched/consumer"
)

// seen is what dedupe.begin found for an activation id.
type seen int

const (
	seenNew      seen = iota // first sight: run it
	seenRunning              // a call for it is in flight: its delivery is finished with that call
	seenFinished             // already answered: finish the delivery at once
	seenLearned              // answered by a predecessor (read from worker-events): finish it at once
)

// dedupe remembers activation ids so that a re-delivered assignment is not
// run twice. Ids of calls in flight are kept until the call ends, with any
// duplicate deliveries attached (they are finished when the call is, so a
// duplicate never lets the offset pass an unfinished call); finished ids
// are kept in a ring of fixed size, oldest forgotten first, with whether
// this process answered them or learned that a predecessor did.
type dedupe struct {
	mu       sync.Mutex
	running  map[string][]*consumer.Delivery
	finished map[string]bool // id → learned from a predecessor's completion
	ring     []string
	next     int
	size     int // ring capacity; 0 remembers nothing once finished
}

func newDedupe(size int) *dedupe {
	return &dedupe{
		running:  map[string][]*consumer.Delivery{},
		finished: map[string]bool{},
		ring:     make([]string, 0, min(size, 1024)),
		size:     size,
	}
}

// begin records a sight of id; for a duplicate of a running call, d is
// attached to it.
func (s *dedupe) begin(id string, d *consumer.Delivery) seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	if learned, ok := s.finished[id]; ok {
		if learned {
			return seenLearned
		}
		return seenFinished
	}
	if ds, ok := s.running[id]; ok {
		s.running[id] = append(ds, d)
		return seenRunning
	}
	s.running[id] = nil
	return seenNew
}

// finish moves id from running to finished and returns the duplicate
// deliveries that waited for it.
func (s *dedupe) finish(id string) []*consumer.Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := s.running[id]
	delete(s.running, id)
	s.add(id, false)
	return ds
}

// learn marks ids a predecessor answered as finished, unless this process
// already knows them, and returns how many were new.
func (s *dedupe) learn(ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := s.running[id]; ok {
			continue
		}
		if s.add(id, true) {
			n++
		}
	}
	return n
}

// add remembers id as finished (learned: by a predecessor) and reports
// whether it was new. Called with s.mu held.
func (s *dedupe) add(id string, learned bool) bool {
	if s.size == 0 {
		return false
	}
	if _, ok := s.finished[id]; ok {
		return false
	}
	if len(s.ring) < s.size {
		s.ring = append(s.ring, id)
	} else {
		delete(s.finished, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % s.size
	}
	s.finished[id] = learned
	return true
}

// abort forgets a running id whose call was not answered (its delivery was
// not finished, so it will come again); duplicates attached to it are left
// unfinished too.
func (s *dedupe) abort(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, id)
}

// len reports how many finished ids are remembered.
func (s *dedupe) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.finished)
}
