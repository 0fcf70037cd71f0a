package consumer

import "testing"

func TestTrackerNeverPassesUnfinished(t *testing.T) {
	cases := []struct {
		name   string
		offs   []int64
		finish []int64
		next   int64 // committable offset after all finishes
		out    int   // outstanding after all finishes
	}{
		{"in order", []int64{0, 1, 2}, []int64{0, 1, 2}, 3, 0},
		{"gap holds", []int64{0, 1, 2, 3}, []int64{0, 2, 3}, 1, 3},
		{"gap filled", []int64{0, 1, 2, 3}, []int64{3, 2, 0, 1}, 4, 0},
		{"sparse offsets", []int64{5, 9, 12}, []int64{5, 12}, 6, 2},
		{"unknown offset ignored", []int64{0, 1}, []int64{7, 0}, 1, 1},
		{"twice", []int64{0, 1}, []int64{0, 0}, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr tracker
			for _, o := range c.offs {
				tr.add(o)
			}
			for _, o := range c.finish {
				tr.finish(o)
			}
			if tr.next != c.next || tr.outstanding() != c.out {
				t.Fatalf("next %d outstanding %d, want %d %d", tr.next, tr.outstanding(), c.next, c.out)
			}
		})
	}
}

func TestTrackerCompacts(t *testing.T) {
	var tr tracker
	for i := int64(0); i < 10000; i++ {
		tr.add(i)
		tr.finish(i)
	}
	if tr.next != 10000 || tr.outstanding() != 0 || len(tr.offs) > 2048 {
		t.Fatalf("next %d outstanding %d len %d", tr.next, tr.outstanding(), len(tr.offs))
	}
	tr.add(10000)
	tr.add(10001)
	tr.finish(10001)
	if tr.next != 10000 {
		t.Fatalf("next %d after finishing past a gap", tr.next)
	}
}
