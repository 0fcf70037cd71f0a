package consumer

import (
	"sort"
	"time"
)

// tracker keeps the unfinished offsets of one partition in order, so that
// the committable offset never passes a record whose work is not done, even
// when later records finish first.
type tracker struct {
	offs []int64 // outstanding and finished offsets not yet committable, ascending
	done []bool
	head int   // offs[:head] are finished and gone
	next int64 // committable offset: one past the last finished prefix
	gone bool  // the partition was revoked; Done is then a no-op
	// since is when the partition last made progress: a record finished,
	// or records came while none were outstanding.
	since time.Time
}

func (t *tracker) add(off int64, now time.Time) {
	if t.head == len(t.offs) {
		t.since = now
		t.offs, t.done, t.head = t.offs[:0], t.done[:0], 0
	}
	t.offs = append(t.offs, off)
	t.done = append(t.done, false)
}

// outstanding is how many added offsets are not yet committable.
func (t *tracker) outstanding() int { return len(t.offs) - t.head }

// finish marks off done at now and reports whether the committable offset
// moved.
func (t *tracker) finish(off int64, now time.Time) bool {
	live := t.offs[t.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i] >= off })
	if i == len(live) || live[i] != off {
		return false
	}
	if !t.done[t.head+i] {
		t.since = now
	}
	t.done[t.head+i] = true
	moved := false
	for t.head < len(t.offs) && t.done[t.head] {
		t.next = t.offs[t.head] + 1
		t.head++
		moved = true
	}
	// Keep memory bounded: compact once the finished prefix dominates.
	if t.head > 1024 && t.head*2 > len(t.offs) {
		n := copy(t.offs, t.offs[t.head:])
		copy(t.done, t.done[t.head:])
		t.offs, t.done, t.head = t.offs[:n], t.done[:n], 0
	}
	return moved
}
