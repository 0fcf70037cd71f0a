package policy

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestJavaStringHash(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int32
	}{
		{"", 0},
		{"a", 97},
		{"hello", 99162322},
		{"Aa", 2112}, {"BB", 2112}, // Java's classic collision
		{"polygenelubricants", math.MinInt32},
		{"\U0001F600", 0xD83D*31 + 0xDE00}, // a surrogate pair counts as two code units
		{"é", 0xE9},
	} {
		if got := JavaStringHash(tc.s); got != tc.want {
			t.Errorf("JavaStringHash(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func TestOWGenerateHash(t *testing.T) {
	for _, tc := range []struct {
		ns, action string
		want       int32
	}{
		{"", "hello", 99162322},
		{"a", "a", 0},
		{"Aa", "BB", 0},
		{"a", "", 97},
		{"", "polygenelubricants", math.MinInt32}, // Int.abs leaves it negative
		{"guest", "guest/hello", abs32(JavaStringHash("guest") ^ JavaStringHash("guest/hello"))},
	} {
		if got := OWGenerateHash(tc.ns, tc.action); got != tc.want {
			t.Errorf("OWGenerateHash(%q, %q) = %d, want %d", tc.ns, tc.action, got, tc.want)
		}
	}
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

func TestOWCoprimeSteps(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{0, nil}, {1, []int{1}}, {2, []int{1}}, {3, []int{1, 2}}, {9, []int{1, 2, 5, 7}},
		{10, []int{1, 3, 7}}, {12, []int{1, 5, 7, 11}},
	} {
		if got := OWCoprimeSteps(tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("OWCoprimeSteps(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestOWHomeAndStep(t *testing.T) {
	for _, tc := range []struct {
		hash       int32
		n          int
		home, step int
	}{
		{13, 10, 3, 3}, // the balancer's own worked example
		{0, 1, 0, 1},
		{7, 12, 7, 11},
		{math.MinInt32, 10, 2, 3}, // -2147483648 % 10 = -8, taken to 2; % 3 = -2, taken to index 1
	} {
		home, step := OWHomeAndStep(tc.hash, tc.n)
		if home != tc.home || step != tc.step {
			t.Errorf("OWHomeAndStep(%d, %d) = %d, %d; want %d, %d", tc.hash, tc.n, home, step, tc.home, tc.step)
		}
	}
}

func TestIDOrder(t *testing.T) {
	ids := []string{"invoker10", "invoker2", "b", "invoker0", "a7", "invoker1", "a10"}
	slices.SortFunc(ids, idOrder)
	want := []string{"a7", "a10", "b", "invoker0", "invoker1", "invoker2", "invoker10"}
	if !slices.Equal(ids, want) {
		t.Fatalf("got %v, want %v", ids, want)
	}
}

// TestOWHashWalk checks the walk from the home worker with the coprime
// step over workers of capacity 1, then NoCapacity, and that a departed
// worker keeps its index.
func TestOWHashWalk(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		fn      string
		leave   string // a worker that left before the picks
		drained string // a worker draining before the picks
	}{
		{"five", 5, "thumbnail", "", ""},
		{"ten", 10, "guest-hello", "", ""},
		{"ten-one-left", 10, "guest-hello", "invoker3", ""},
		{"seven-one-draining", 7, "f", "", "invoker0"},
		{"one", 1, "x", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(NameOWHash, Config{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if p.Name() != NameOWHash {
				t.Fatalf("name %q", p.Name())
			}
			// Join in scrambled order: the list is by id, not by join order.
			for i := tc.n - 1; i >= 0; i-- {
				p.WorkerJoined(WorkerInfo{ID: fmt.Sprintf("invoker%d", i), Capacity: 1})
			}
			if tc.leave != "" {
				p.WorkerLeft(tc.leave)
			}
			if tc.drained != "" {
				p.WorkerDraining(tc.drained)
			}
			home, step := OWHomeAndStep(OWHashOf(tc.fn), tc.n)
			var want []string
			for k, i := 0, home; k < tc.n; k, i = k+1, (i+step)%tc.n {
				id := fmt.Sprintf("invoker%d", i)
				if id != tc.leave && id != tc.drained {
					want = append(want, id)
				}
			}
			var got []string
			for range want {
				d := p.Pick(Request{Function: tc.fn})
				if d.Code != Placed {
					t.Fatalf("after %v: %+v", got, d)
				}
				got = append(got, d.Worker)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("walk %v, want %v (home %d, step %d)", got, want, home, step)
			}
			if d := p.Pick(Request{Function: tc.fn}); d.Code != NoCapacity {
				t.Fatalf("full cluster: %+v, want no capacity", d)
			}
			// A completion frees its worker, which takes the next request.
			p.Completed(Completion{Worker: want[len(want)-1], Function: tc.fn, OK: true})
			if d := p.Pick(Request{Function: tc.fn}); d.Worker != want[len(want)-1] {
				t.Fatalf("after a completion: %+v, want %s", d, want[len(want)-1])
			}
		})
	}
}

func TestOWHashCodes(t *testing.T) {
	p, _ := New(NameOWHash, Config{})
	if d := p.Pick(Request{Function: "f"}); d.Code != NoWorkers {
		t.Fatalf("empty: %+v", d)
	}
	p.WorkerJoined(WorkerInfo{ID: "invoker0"})
	p.WorkerJoined(WorkerInfo{ID: "invoker1"})
	// Unlimited capacity: the home worker takes everything.
	first := p.Pick(Request{Function: "f"}).Worker
	for range 50 {
		if d := p.Pick(Request{Function: "f"}); d.Worker != first {
			t.Fatalf("unlimited: %+v, want always %s", d, first)
		}
	}
	p.WorkerLeft("invoker0")
	p.WorkerLeft("invoker1")
	if d := p.Pick(Request{Function: "f"}); d.Code != NoWorkers {
		t.Fatalf("all left: %+v", d)
	}
}

func TestOWHashOf(t *testing.T) {
	for _, tc := range []struct {
		fn   string
		want int32
	}{
		{"guest.guest.hello-0123456789ab.owh05e9a0d2", 0x05e9a0d2},
		{"x.owhffffffff", -1},
		{"x.owh80000000", math.MinInt32},
		{"plain", OWGenerateHash("", "plain")},
		{".owh0000000g", OWGenerateHash("", ".owh0000000g")},   // not hex
		{"x.owh0000000A", OWGenerateHash("", "x.owh0000000A")}, // upper case
		{".owh00000001", OWGenerateHash("", ".owh00000001")},   // nothing before the suffix
	} {
		if got := OWHashOf(tc.fn); got != tc.want {
			t.Errorf("OWHashOf(%q) = %d, want %d", tc.fn, got, tc.want)
		}
	}
}

// TestOWHashCarriedHash replays the balancer's worked example (hash 13, 10
// invokers: home 3, step 3) with a key carrying hash 13.
func TestOWHashCarriedHash(t *testing.T) {
	p, _ := New(NameOWHash, Config{})
	for i := range 10 {
		p.WorkerJoined(WorkerInfo{ID: fmt.Sprintf("invoker%d", i), Capacity: 1})
	}
	var got []string
	for range 4 {
		got = append(got, p.Pick(Request{Function: "acme.acme.resize-0123456789ab.owh0000000d"}).Worker)
	}
	if want := []string{"invoker3", "invoker6", "invoker9", "invoker2"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
