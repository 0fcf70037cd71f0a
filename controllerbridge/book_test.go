package controllerbridge

import (
	"strings"
	"testing"
	"time"

	"github.com/pullsched/pullsched/topics"
)

// sized is a result of id with a body of n bytes.
func sized(id string, n int) *topics.Result {
	return &topics.Result{ID: id, Status: 200, Body: []byte(`"` + strings.Repeat("x", n-2) + `"`)}
}

// entry is what the book accounts for a pending activation of id (and key).
func entry(id, key string) int64 { return entryBytes + int64(len(id)+len(key)) }

func TestBookBytesAccounted(t *testing.T) {
	b := newBook(time.Minute, 100, 1<<30, 10)
	t0 := time.Unix(1000, 0)
	if _, ok := b.register("nb", false, t0, t0.Add(time.Second)); !ok {
		t.Fatal("register refused")
	}
	if got := b.stats().Bytes; got != entry("nb", "") {
		t.Fatalf("pending: %d bytes, want %d", got, entry("nb", ""))
	}
	res := sized("nb", 400_000)
	b.deliver(res, t0)
	want := entry("nb", "") + resultBytes(res)
	if got := b.stats().Bytes; got != want || want < 400_000 {
		t.Fatalf("stored: %d bytes, want %d (at least the body)", got, want)
	}
	b.forget("nb")
	if got := b.stats().Bytes; got != 0 {
		t.Errorf("after forget: %d bytes", got)
	}
	b.register("ex", false, t0, t0)
	b.deliver(sized("ex", 1000), t0)
	b.lookup("ex", t0.Add(time.Minute)) // expires
	if st := b.stats(); st.Bytes != 0 || st.Activations != 0 {
		t.Errorf("after expiry: %+v", st)
	}
}

// TestBookByteBound: beyond its byte bound the book forgets the oldest
// results first, and never holds more than the bound.
func TestBookByteBound(t *testing.T) {
	one := entry("a", "") + resultBytes(sized("a", 10_000))
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name    string
		max     int64
		results int
		kept    string // ids still fetchable, in order
	}{
		{"room for all", 4 * one, 4, "abcd"},
		{"room for three", 3 * one, 4, "bcd"},
		{"room for two and a half", 2*one + one/2, 4, "cd"},
		{"room for one", one, 4, "d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBook(time.Minute, 100, tc.max, 10)
			ids := "abcd"[:tc.results]
			for i, id := range ids {
				// All pending first, so that results come in a different
				// order than the activations were registered.
				b.register(string(id), false, t0, t0.Add(time.Duration(len(ids)-i)*time.Second))
			}
			for i, id := range ids {
				b.deliver(sized(string(id), 10_000), t0.Add(time.Duration(i)*time.Millisecond))
			}
			var kept string
			for _, id := range ids {
				if res, known := b.lookup(string(id), t0); known && res != nil {
					kept += string(id)
				}
			}
			if kept != tc.kept {
				t.Errorf("kept %q, want %q", kept, tc.kept)
			}
			st := b.stats()
			if st.Bytes > tc.max {
				t.Errorf("%d bytes held, over the bound %d", st.Bytes, tc.max)
			}
			if st.Evicted != int64(len(ids)-len(tc.kept)) {
				t.Errorf("evicted %d, want %d", st.Evicted, len(ids)-len(tc.kept))
			}
		})
	}
}

// TestBookDrop: a blocking request's result is dropped once answered with,
// unless an idempotency key may ask for it again; non-blocking and
// abandoned results stay.
func TestBookDrop(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name     string
		key      string
		blocking bool
		gaveUp   bool // the request stopped waiting before the result came
		kept     bool
	}{
		{"blocking, answered", "", true, false, false},
		{"blocking with a key, answered", idemKey("f", "k1"), true, false, true},
		{"blocking, gave up", "", true, true, true},
		{"non-blocking", "", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBook(time.Minute, 10, 1<<30, 10)
			cl, ok := b.claim("x", tc.key, tc.blocking, t0, t0.Add(time.Second))
			if !ok || cl.existing || cl.id != "x" {
				t.Fatalf("claim %+v %v", cl, ok)
			}
			if tc.gaveUp {
				b.unwait("x", cl.ch)
			}
			res := sized("x", 5000)
			b.deliver(res, t0)
			if tc.blocking && !tc.gaveUp {
				if got := <-cl.ch; got != res {
					t.Fatalf("waiter got %+v", got)
				}
				b.drop("x") // what the handler does once it has answered
			}
			got, known := b.lookup("x", t0)
			if kept := known && got == res; kept != tc.kept {
				t.Errorf("result kept %v, want %v", kept, tc.kept)
			}
			st := b.stats()
			if want := entry("x", tc.key); !tc.kept && st.Bytes != want {
				t.Errorf("after drop: %d bytes, want %d (the mark only)", st.Bytes, want)
			}
			if st.Waiting != 0 {
				t.Errorf("%d waiting", st.Waiting)
			}
			// A duplicate is still recognised as one.
			if out := b.deliver(sized("x", 10), t0); out != outDuplicate {
				t.Errorf("duplicate result: %s", out)
			}
		})
	}
}

func TestBookIdempotencyKey(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBook(time.Minute, 10, 1<<30, 10)
	k := idemKey("f", "k1")
	first, _ := b.claim("a1", k, true, t0, t0.Add(time.Second))
	second, ok := b.claim("a2", k, true, t0, t0.Add(time.Second))
	if !ok || !second.existing || second.id != "a1" || second.res != nil {
		t.Fatalf("same key while pending: %+v %v", second, ok)
	}
	other, _ := b.claim("a3", idemKey("g", "k1"), false, t0, t0.Add(time.Second))
	if other.existing || other.id != "a3" {
		t.Errorf("same key, other function: %+v", other)
	}
	if b.waiting() != 2 {
		t.Errorf("%d waiting, want 2", b.waiting())
	}
	res := sized("a1", 100)
	if out := b.deliver(res, t0); out != outDelivered {
		t.Errorf("deliver: %s", out)
	}
	if <-first.ch != res || <-second.ch != res {
		t.Error("the two requests did not get the same result")
	}
	b.drop("a1")
	third, _ := b.claim("a4", k, true, t0, t0.Add(time.Second))
	if !third.existing || third.id != "a1" || third.res != res || third.ch != nil {
		t.Errorf("same key after the result: %+v", third)
	}
	if b.waiting() != 0 {
		t.Errorf("%d waiting", b.waiting())
	}
	// The key is forgotten with its activation.
	again, _ := b.claim("a5", k, false, t0.Add(time.Minute+time.Second), t0.Add(2*time.Minute))
	if again.existing || again.id != "a5" {
		t.Errorf("same key after expiry: %+v", again)
	}

	// An arrival that was never published takes its key with it, and
	// requests waiting on it learn so.
	p1, _ := b.claim("p1", idemKey("f", "k2"), true, t0, t0.Add(time.Second))
	p2, _ := b.claim("p2", idemKey("f", "k2"), true, t0, t0.Add(time.Second))
	b.unwait("p1", p1.ch)
	b.forget("p1")
	if r := <-p2.ch; r != nil {
		t.Errorf("waiter of a forgotten activation got %+v", r)
	}
	if p3, _ := b.claim("p3", idemKey("f", "k2"), false, t0, t0.Add(time.Second)); p3.existing {
		t.Error("the key outlived its unpublished activation")
	}
	if b.waiting() != 0 {
		t.Errorf("%d waiting", b.waiting())
	}
}

func TestCheckIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want string // in the error; "" when valid
	}{
		{"order-42", ""},
		{"a b~!", ""},
		{strings.Repeat("k", MaxIdempotencyKey), ""},
		{"", "empty"},
		{strings.Repeat("k", MaxIdempotencyKey+1), "more than 255"},
		{"a\tb", "printable ASCII"},
		{"clé", "printable ASCII"},
		{"a\x7f", "printable ASCII"},
	} {
		err := checkIdempotencyKey(tc.key)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.key, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want an error saying %q", tc.key, err, tc.want)
		}
	}
}
