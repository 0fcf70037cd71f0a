package owbridge

import (
	"slices"
	"testing"
	"time"
)

func TestShadowPool(t *testing.T) {
	t0 := time.Unix(1764150000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	p := shadowPool{}
	p.resize(1024)
	steps := []struct {
		op      string // a: assign, c: complete, x: complete destroying
		fn      string
		mem     int
		evicted []string
	}{
		{"a", "f", 256, nil}, {"c", "f", 256, nil}, // f idle
		{"a", "g", 512, nil}, {"c", "g", 512, nil}, // g idle, 768 used
		{"a", "f", 256, nil},                       // warm: reuses f
		{"a", "h", 256, nil},                       // 1024 used
		{"a", "k", 256, []string{"g"}},             // g is the only idle one
		{"c", "f", 256, nil}, {"c", "h", 256, nil}, // f idle (older), h idle
		{"a", "m", 512, []string{"f"}}, // the least recently used idle one is enough
		{"a", "n", 512, []string{"h"}}, // then the last idle one, and the rest queues
		{"x", "n", 512, nil},           // destroyed
		{"c", "q", 256, nil},           // a container the model missed: now idle
	}
	for i, st := range steps {
		var got []string
		switch st.op {
		case "a":
			got = p.assign(st.fn, st.mem, at(i))
		case "c":
			got = p.complete(st.fn, st.mem, true, at(i))
		case "x":
			got = p.complete(st.fn, st.mem, false, at(i))
		}
		if !slices.Equal(got, st.evicted) {
			t.Fatalf("step %d (%s %s): evicted %v, want %v", i, st.op, st.fn, got, st.evicted)
		}
	}
	// k and m busy (768), q idle (256).
	if p.used != 1024 || len(p.conts) != 3 {
		t.Fatalf("used %d MB in %d containers, want 1024 in 3", p.used, len(p.conts))
	}
}
