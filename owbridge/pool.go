package owbridge

import (
	"time"
)

// shadowPool mirrors an OpenWhisk invoker's container pool from what the
// bridge sees, to tell pullsched about the containers the invoker
// removes: invokers announce no evictions, and without them pull's idle
// entries outlive their containers until a cold start reveals it.
//
// The model is the ContainerPool's: one container per activation of an
// action (concurrency 1); an activation takes an idle container of its
// action if there is one, else a new container of the action's memory,
// for which the least recently used idle containers are removed while
// the pool's memory (the invoker's userMemory) would not hold it. An
// activation that ends with status code 2 or 3 destroys its container.
// Prewarmed containers and the idle timeout are not modelled.
type shadowPool struct {
	capMB int
	used  int
	conts []*shadowCont
}

type shadowCont struct {
	fn   string
	mem  int
	busy bool
	last time.Time
}

// assign books an activation of fn (memory mem MB) and returns the
// functions of the idle containers it evicted.
func (p *shadowPool) assign(fn string, mem int, now time.Time) []string {
	for _, c := range p.conts {
		if !c.busy && c.fn == fn {
			c.busy, c.last = true, now
			return nil
		}
	}
	return p.create(fn, mem, true, now)
}

// create adds a container of fn, evicting least recently used idle ones
// while the memory would not hold it.
func (p *shadowPool) create(fn string, mem int, busy bool, now time.Time) []string {
	var evicted []string
	for p.used+mem > p.capMB {
		lru := -1
		for i, c := range p.conts {
			if !c.busy && (lru < 0 || c.last.Before(p.conts[lru].last)) {
				lru = i
			}
		}
		if lru < 0 {
			break // all busy: the invoker queues the activation; no eviction to tell
		}
		evicted = append(evicted, p.conts[lru].fn)
		p.remove(lru)
	}
	p.conts = append(p.conts, &shadowCont{fn: fn, mem: mem, busy: busy, last: now})
	p.used += mem
	return evicted
}

func (p *shadowPool) remove(i int) {
	p.used -= p.conts[i].mem
	p.conts[i] = p.conts[len(p.conts)-1]
	p.conts = p.conts[:len(p.conts)-1]
}

// complete books the end of an activation of fn: its container becomes
// idle, or is destroyed when keep is false. It returns the functions of
// the containers evicted to make room for one the model had missed.
func (p *shadowPool) complete(fn string, mem int, keep bool, now time.Time) []string {
	for i, c := range p.conts {
		if c.busy && c.fn == fn {
			if !keep {
				p.remove(i)
				return nil
			}
			c.busy, c.last = false, now
			return nil
		}
	}
	if !keep {
		return nil
	}
	// The model missed the container (the bridge restarted, or the
	// activation came before the invoker was known): it exists now.
	return p.create(fn, mem, false, now)
}

// resize sets the pool's memory; it evicts nothing (the invoker will, as
// activations need room).
func (p *shadowPool) resize(capMB int) { p.capMB = capMB }
