package policy

import (
	"testing"
)

// checkInvariants verifies pull's internal books: heaps ordered by stored
// keys with correct positions, stored keys never above the real ones,
// worker buckets and pair index consistent, expiry list ordered.
func (p *pull) checkInvariants(t *testing.T) {
	t.Helper()
	live := 0
	for f, h := range p.fheaps {
		for i, e := range h {
			en := p.ents[e]
			if int(en.f) != f || int(en.hpos) != i || en.count <= 0 {
				t.Fatalf("heap %d[%d]: entry %+v", f, i, en)
			}
			if i > 0 && p.less(e, h[(i-1)/2]) {
				t.Fatalf("heap %d not ordered at %d", f, i)
			}
			if real := p.keyOf(en.w); en.key > real {
				t.Fatalf("entry %+v stored key above the real key %d", en, real)
			}
			if c := p.ws[en.w].cap; c > 0 && int(en.count) > c {
				t.Fatalf("entry %+v counts more than capacity %d", en, c)
			}
			if p.ws[en.w].state != stateActive {
				t.Fatalf("entry %+v for a worker in state %d", en, p.ws[en.w].state)
			}
			if got, ok := p.pairs[pairKey(en.w, en.f)]; !ok || got != e {
				t.Fatalf("pair index misses entry %d", e)
			}
			b := *p.bucket(en.w, en.key)
			if int(en.wpos) >= len(b) || b[en.wpos] != e {
				t.Fatalf("entry %+v not in its worker bucket", en)
			}
			if en.key != notEligible && int(en.key) > p.wk[en.w].top {
				t.Fatalf("entry %+v above its worker's top %d", en, p.wk[en.w].top)
			}
			live++
		}
	}
	dormant := 0
	for pk, e := range p.pairs {
		en := p.ents[e]
		if pairKey(en.w, en.f) != pk {
			t.Fatalf("pair index maps %x to entry %+v", pk, en)
		}
		if en.count == 0 {
			if en.hpos != -1 || p.ws[en.w].state != stateActive {
				t.Fatalf("dormant entry %+v is in a heap or on an inactive worker", en)
			}
			dormant++
		}
	}
	if live+dormant != len(p.pairs) {
		t.Fatalf("%d entries in heaps + %d dormant, %d in the pair index", live, dormant, len(p.pairs))
	}
	n := 0
	for w := range p.wk {
		n += p.wk[w].n
	}
	if n != live {
		t.Fatalf("worker buckets count %d entries, heaps %d", n, live)
	}
	listed := 0
	prev := int32(-1)
	for e := p.head; e >= 0; e = p.ents[e].next {
		if p.ents[e].prev != prev || (prev >= 0 && p.ents[prev].stamp > p.ents[e].stamp) {
			t.Fatalf("expiry list broken at %d", e)
		}
		prev = e
		listed++
	}
	if listed != len(p.pairs) || p.tail != prev {
		t.Fatalf("expiry list holds %d of %d entries", listed, len(p.pairs))
	}
}

// bestIdle is a brute-force reference for the head of function fn's idle
// queue: the lowest real load among workers with room, then the most recent.
func (p *pull) bestIdle(fn string) (string, bool) {
	f, ok := p.fids[fn]
	if !ok {
		return "", false
	}
	best := int32(-1)
	for _, e := range p.fheaps[f] {
		en := p.ents[e]
		k := p.keyOf(en.w)
		if k == notEligible {
			continue
		}
		if best < 0 {
			best = e
			continue
		}
		bk := p.keyOf(p.ents[best].w)
		if k < bk || (k == bk && en.seq > p.ents[best].seq) {
			best = e
		}
	}
	if best < 0 {
		return "", false
	}
	return p.ws[p.ents[best].w].id, true
}

// checkedPull wraps pull so that the property runs verify, around every
// call, the invariants and that a warm pick is the exact best entry.
type checkedPull struct {
	*pull
	t *testing.T
}

func (c checkedPull) Pick(r Request) Decision {
	c.pull.sweep(r.Now)
	want, warm := c.bestIdle(r.Function)
	d := c.pull.Pick(r)
	if d.Code == Placed && (d.Warm != warm || (warm && d.Worker != want)) {
		c.t.Fatalf("Pick(%s) = %+v, brute force says warm=%v on %s", r.Function, d, warm, want)
	}
	c.checkInvariants(c.t)
	return d
}

func (c checkedPull) Completed(x Completion) { c.pull.Completed(x); c.checkInvariants(c.t) }
func (c checkedPull) ExternalLoad(id string, n int) {
	c.pull.ExternalLoad(id, n)
	c.checkInvariants(c.t)
}
func (c checkedPull) WorkerJoined(w WorkerInfo) { c.pull.WorkerJoined(w); c.checkInvariants(c.t) }
func (c checkedPull) WorkerDraining(id string)  { c.pull.WorkerDraining(id); c.checkInvariants(c.t) }
func (c checkedPull) WorkerLeft(id string)      { c.pull.WorkerLeft(id); c.checkInvariants(c.t) }

func TestPullInvariantsUnderRandomSequences(t *testing.T) {
	for seed := uint64(10); seed < 16; seed++ {
		p, err := New(NamePull, Config{Seed: int64(seed), KeepAlive: 30_000_000_000})
		if err != nil {
			t.Fatal(err)
		}
		runRandom(t, checkedPull{p.(*pull), t}, seed, 3000)
	}
}
