package loadgen

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPercentileNearestRank(t *testing.T) {
	// The textbook nearest-rank example.
	xs := []float64{15, 20, 35, 40, 50}
	for _, c := range []struct{ p, want float64 }{
		{5, 15}, {20, 15}, {30, 20}, {40, 20}, {50, 35}, {90, 50}, {100, 50}, {0, 15}, {-1, 15}, {150, 50},
	} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	// 1..100: the p-th percentile is p itself.
	var hundred []float64
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, float64(i))
	}
	for _, p := range []float64{1, 50, 90, 95, 99, 100} {
		if got := Percentile(hundred, p); got != p {
			t.Errorf("1..100 p%v = %v", p, got)
		}
	}
	if got := Percentile(hundred, 99.5); got != 100 {
		t.Errorf("p99.5 = %v, want 100", got)
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty percentile not 0")
	}
}

func TestMeanAndCV(t *testing.T) {
	xs := []float64{2, 4, 4, 4, 5, 5, 7, 9} // mean 5, population sd 2
	if m := Mean(xs); m != 5 {
		t.Errorf("mean %v", m)
	}
	if cv := CV(xs); !near(cv, 0.4) {
		t.Errorf("cv %v, want 0.4", cv)
	}
	for _, c := range []struct {
		xs   []float64
		want float64
	}{
		{nil, 0}, {[]float64{0, 0, 0}, 0}, {[]float64{3, 3, 3}, 0}, {[]float64{1, 0}, 1}, {[]float64{3, 1}, 0.5},
		{[]float64{4, 0, 0, 0}, math.Sqrt(3)},
	} {
		if got := CV(c.xs); !near(got, c.want) {
			t.Errorf("CV(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}

func TestLoadImbalance(t *testing.T) {
	s := func(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
	as := []Assignment{
		// second 0: a 2, b 2 → CV 0
		{s(0.1), "a"}, {s(0.5), "b"}, {s(0.9), "a"}, {s(0.99), "b"},
		// second 1: a 3, b 1 → CV 0.5
		{s(1.0), "a"}, {s(1.2), "a"}, {s(1.3), "b"}, {s(1.999), "a"},
		// seconds 2–4: nothing, not counted
		// second 5: a 1, b 0 → CV 1
		{s(5.5), "a"},
	}
	cv, n := LoadImbalance(as, []string{"a", "b"})
	if n != 3 || !near(cv, 0.5) {
		t.Errorf("got %v over %d s, want 0.5 over 3", cv, n)
	}
	// Workers seen only in assignments are counted; order of input is free.
	cv2, _ := LoadImbalance([]Assignment{as[8], as[0], as[1], as[2], as[3], as[4], as[5], as[6], as[7]}, nil)
	if !near(cv2, cv) {
		t.Errorf("nil workers: %v, want %v", cv2, cv)
	}
	// An idle third worker counts as 0 in every second:
	// second 0 [2,2,0] → √2/2; second 1 [3,1,0] → √(14/9)/(4/3); second 5 [1,0,0] → √2.
	cv3, _ := LoadImbalance(as, []string{"a", "b", "c"})
	want := (math.Sqrt2/2 + math.Sqrt(14.0/9)/(4.0/3) + math.Sqrt2) / 3
	if !near(cv3, want) {
		t.Errorf("with idle worker %v, want %v", cv3, want)
	}
	if cv, n := LoadImbalance(nil, []string{"a"}); cv != 0 || n != 0 {
		t.Errorf("empty: %v %d", cv, n)
	}
	// Perfect balance every second.
	var even []Assignment
	for sec := range 10 {
		for _, w := range []string{"x", "y", "z"} {
			even = append(even, Assignment{time.Duration(sec) * time.Second, w})
		}
	}
	if cv, n := LoadImbalance(even, nil); cv != 0 || n != 10 {
		t.Errorf("even: %v over %d", cv, n)
	}
}

func TestCDF(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	full := CDF(xs, 100)
	if len(full) != 10 || full[0] != (CDFPoint{1, 0.1}) || full[9] != (CDFPoint{10, 1}) {
		t.Errorf("full cdf %v", full)
	}
	two := CDF(xs, 2)
	if len(two) != 2 || two[0] != (CDFPoint{5, 0.5}) || two[1] != (CDFPoint{10, 1}) {
		t.Errorf("2-point cdf %v", two)
	}
	if CDF(nil, 5) != nil {
		t.Error("empty cdf")
	}
}

func TestSummarize(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	recs := []Record{
		{At: ms(100), Latency: ms(100), Status: 200, Start: Cold, Worker: "w1"},
		{At: ms(200), Latency: ms(200), Status: 200, Start: Warm, Worker: "w2"},
		{At: ms(300), Latency: ms(300), Status: 200, Start: Warm, Worker: "w1"},
		{At: ms(400), Latency: ms(400), Status: 200, Worker: "w2"}, // no X-Cold-Start
		{At: ms(500), Latency: ms(9000), Status: 503},
		{At: ms(600), Latency: ms(9000), Err: "connection refused"},
	}
	s := Summarize("x", recs, nil, 2)
	if s.Requests != 6 || s.Errors != 2 || s.ErrorKinds["status 503"] != 1 || s.ErrorKinds["transport"] != 1 {
		t.Errorf("counts %+v", s)
	}
	if s.MeanMS != 250 || s.P50MS != 200 || s.P99MS != 400 || s.MaxMS != 400 || s.RPS != 3 {
		t.Errorf("latency/rate %+v", s)
	}
	if s.Cold != 1 || s.Warm != 2 || !near(s.ColdStartRate, 1.0/3) {
		t.Errorf("cold %+v", s)
	}
	if s.Workers["w1"] != 2 || s.Workers["w2"] != 2 || s.LoadCV != 0 || s.LoadSeconds != 1 {
		t.Errorf("load %+v", s)
	}
	// Against a wider worker set the same second is imbalanced: [2,2,0].
	s = Summarize("x", recs, []string{"w1", "w2", "w3"}, 2)
	if !near(s.LoadCV, math.Sqrt2/2) {
		t.Errorf("load CV %v", s.LoadCV)
	}
}
