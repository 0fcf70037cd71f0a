package policy

import (
	"math"
	"time"
)

// base holds what every baseline shares: the cluster books and the
// Completed and Evicted handling of a policy that keeps no idle state.
type base struct {
	cluster
	name string
}

func newBase(name string, cfg Config) base {
	return base{cluster: newCluster(cfg.Seed), name: name}
}

// Name implements Policy.
func (b *base) Name() string { return b.name }

// Completed implements Policy: it releases the slot.
func (b *base) Completed(c Completion) {
	if w, ok := b.lookup(c.Worker); ok {
		b.release(w)
	}
}

// Evicted implements Policy; baselines keep no idle state.
func (b *base) Evicted(worker, function string, now time.Time) {}

// placed commits an assignment to worker w and returns its Decision.
func (b *base) placed(w int32) Decision {
	b.assign(w)
	return Decision{Code: Placed, Worker: b.ws[w].id}
}

// leastConn sends each request to the worker with the fewest in-flight
// requests (own plus external), breaking ties uniformly at random.
type leastConn struct{ base }

var _ Policy = (*leastConn)(nil)

func newLeastConn(cfg Config) *leastConn { return &leastConn{newBase(NameLeastConn, cfg)} }

// Pick implements Policy.
func (p *leastConn) Pick(r Request) Decision {
	if code := p.unavailable(); code != 0 {
		return Decision{Code: code}
	}
	return p.placed(p.leastLoaded())
}

// randomPolicy sends each request to a uniformly random worker with room.
type randomPolicy struct{ base }

var _ Policy = (*randomPolicy)(nil)

func newRandom(cfg Config) *randomPolicy { return &randomPolicy{newBase(NameRandom, cfg)} }

// Pick implements Policy.
func (p *randomPolicy) Pick(r Request) Decision {
	if code := p.unavailable(); code != 0 {
		return Decision{Code: code}
	}
	return p.placed(p.randomEligible())
}

// p2c samples two distinct workers with room and sends the request to the
// less loaded one (the first sampled on a tie).
type p2c struct{ base }

var _ Policy = (*p2c)(nil)

func newP2C(cfg Config) *p2c { return &p2c{newBase(NameP2C, cfg)} }

// Pick implements Policy.
func (p *p2c) Pick(r Request) Decision {
	if code := p.unavailable(); code != 0 {
		return Decision{Code: code}
	}
	n := len(p.elig)
	if n == 1 {
		return p.placed(p.elig[0])
	}
	i := p.rng.IntN(n)
	j := p.rng.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := p.elig[i], p.elig[j]
	if p.ws[b].load() < p.ws[a].load() {
		a = b
	}
	return p.placed(a)
}

// hashPolicy is plain consistent hashing: a function goes to the owner of
// the first ring point at or after its hash. The only deviation is capacity:
// when the owner is full (or draining) the walk continues clockwise to the
// next worker with room, so a capacity limit is never exceeded.
type hashPolicy struct {
	base
	ring ring
}

var _ Policy = (*hashPolicy)(nil)

func newHash(cfg Config) *hashPolicy {
	return &hashPolicy{base: newBase(NameHash, cfg), ring: ring{vnodes: cfg.VirtualNodes}}
}

// Pick implements Policy.
func (p *hashPolicy) Pick(r Request) Decision {
	if code := p.unavailable(); code != 0 {
		return Decision{Code: code}
	}
	p.ring.sync(&p.cluster)
	n := len(p.ring.points)
	i := p.ring.start(r.Function)
	for k := 0; k < n; k++ {
		w := p.ring.owners[i]
		if p.ws[w].eligible() {
			return p.placed(w)
		}
		if i++; i == n {
			i = 0
		}
	}
	// Unreachable while the ring holds every active worker; stay safe.
	return p.placed(p.leastLoaded())
}

// chbl is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam): the walk from the function's hash skips workers whose load
// has reached ceil(c * (total load + 1) / active workers). Load is the
// current in-flight count (own plus external) and is released on completion,
// so the bound tracks the real load instead of drifting upward.
type chbl struct {
	base
	ring ring
	c    float64
}

var _ Policy = (*chbl)(nil)

func newCHBL(cfg Config) *chbl {
	return &chbl{base: newBase(NameCHBL, cfg), ring: ring{vnodes: cfg.VirtualNodes}, c: cfg.LoadBound}
}

// Pick implements Policy.
func (p *chbl) Pick(r Request) Decision {
	if code := p.unavailable(); code != 0 {
		return Decision{Code: code}
	}
	return p.placed(boundedHash(&p.cluster, &p.ring, p.c, r.Function))
}

// boundedHash is consistent hashing with bounded loads over cl: walk the
// ring clockwise from fn's hash and take the first eligible worker whose
// load is below ceil(c * (total + 1) / active). cl must have an eligible
// worker.
func boundedHash(cl *cluster, rg *ring, c float64, fn string) int32 {
	rg.sync(cl)
	bound := int(math.Ceil(c * float64(cl.total+1) / float64(cl.active)))
	n := len(rg.points)
	i := rg.start(fn)
	for k := 0; k < n; k++ {
		w := rg.owners[i]
		if ws := &cl.ws[w]; ws.eligible() && ws.load() < bound {
			return w
		}
		if i++; i == n {
			i = 0
		}
	}
	// Every worker under the bound is at its own capacity (possible only
	// with uneven capacities): take the least-loaded worker with room.
	return cl.leastLoaded()
}
