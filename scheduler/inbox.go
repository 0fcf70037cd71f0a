package scheduler

import "sync"

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
