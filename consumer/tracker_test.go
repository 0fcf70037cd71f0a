package consumer

import (
	"errors"
	"testing"
	"time"
)

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
				tr.add(o, time.Time{})
			}
			for _, o := range c.finish {
				tr.finish(o, time.Time{})
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
		tr.add(i, time.Time{})
		tr.finish(i, time.Time{})
	}
	if tr.next != 10000 || tr.outstanding() != 0 || len(tr.offs) > 2048 {
		t.Fatalf("next %d outstanding %d len %d", tr.next, tr.outstanding(), len(tr.offs))
	}
	tr.add(10000, time.Time{})
	tr.add(10001, time.Time{})
	tr.finish(10001, time.Time{})
	if tr.next != 10000 {
		t.Fatalf("next %d after finishing past a gap", tr.next)
	}
}

// since moves when a record finishes or records come to an idle partition,
// not when more come while some are outstanding, nor on a repeated finish.
func TestTrackerProgressTime(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var tr tracker
	steps := []struct {
		name  string
		do    func()
		since time.Time
	}{
		{"records come to an idle partition", func() { tr.add(0, at(0)); tr.add(1, at(0)) }, at(0)},
		{"more come while outstanding", func() { tr.add(2, at(5)) }, at(0)},
		{"a later record finishes", func() { tr.finish(2, at(10)) }, at(10)},
		{"the same again", func() { tr.finish(2, at(20)) }, at(10)},
		{"an unknown offset", func() { tr.finish(9, at(25)) }, at(10)},
		{"the rest finish", func() { tr.finish(0, at(30)); tr.finish(1, at(31)) }, at(31)},
		{"new records after idle", func() { tr.add(3, at(90)) }, at(90)},
	}
	for _, s := range steps {
		s.do()
		if !tr.since.Equal(s.since) {
			t.Fatalf("%s: since %v, want %v", s.name, tr.since.Sub(t0), s.since.Sub(t0))
		}
	}
}

func TestStuckError(t *testing.T) {
	if err := StuckError(nil); err != nil {
		t.Fatalf("no stalled partitions: %v", err)
	}
	err := StuckError([]Stalled{
		{Topic: "a", Partition: 0, Outstanding: 3, Idle: 45 * time.Second},
		{Topic: "b", Partition: 2, Outstanding: 1, Idle: time.Minute},
	})
	want := "no progress: a[0]: 3 records unfinished, none finished for 45s; b[2]: 1 records unfinished, none finished for 1m0s"
	if !errors.Is(err, ErrStuck) || err.Error() != want {
		t.Fatalf("%v\nwant %s", err, want)
	}
}
