package owbridge

import (
	"testing"
	"time"
)

func TestBook(t *testing.T) {
	t0 := time.Unix(1764150000, 0)
	b := newBook()
	mk := func(id string, deadline time.Duration) *entry {
		return &entry{id: id, fn: "f", arrived: t0, deadline: t0.Add(deadline)}
	}
	if _, fresh, _ := b.add(mk("a", time.Minute)); !fresh {
		t.Fatal("a not fresh")
	}
	if kept, fresh, handled := b.add(mk("a", time.Hour)); fresh || handled || !kept.deadline.Equal(t0.Add(time.Minute)) {
		t.Fatalf("second a: fresh %v handled %v deadline %v", fresh, handled, kept.deadline)
	}
	b.add(mk("b", time.Minute))
	b.add(mk("c", time.Hour))
	b.add(mk("h", time.Minute))
	b.with("a", func(e *entry) { e.worker, e.scheduler = "invoker1", "s1" })
	b.with("b", func(e *entry) { e.worker, e.scheduler = "invoker1", "s2" })
	b.with("h", func(e *entry) { e.worker, e.health = "invoker1", true })
	b.with("b", func(e *entry) { e.answer(t0.Add(time.Second)) })
	if _, _, handled := b.add(mk("a", time.Minute)); !handled {
		t.Fatal("a handed over but not handled")
	}
	infl := b.inflight()
	if len(infl) != 1 || infl["invoker1"]["s1"] != 1 || infl["invoker1"]["s2"] != 0 {
		t.Fatalf("inflight %v: want only a (b answered, h a health test)", infl)
	}
	// b was answered at t0+1s: kept for the dedupe window, then dropped.
	b.sweep(t0.Add(30*time.Second), time.Minute, 5*time.Minute)
	if b.len() != 4 {
		t.Fatalf("%d entries after 30s, want 4", b.len())
	}
	b.sweep(t0.Add(2*time.Minute), time.Minute, 5*time.Minute)
	if b.len() != 3 {
		t.Fatalf("%d entries after 2m, want 3 (b gone)", b.len())
	}
	// a and h: deadline t0+1m, grace 5m.
	b.sweep(t0.Add(6*time.Minute+time.Second), time.Minute, 5*time.Minute)
	b.with("c", func(e *entry) {
		if e == nil {
			t.Fatal("c dropped before its deadline")
		}
	})
	if b.len() != 1 {
		t.Fatalf("%d entries after 6m, want 1 (c)", b.len())
	}
}
