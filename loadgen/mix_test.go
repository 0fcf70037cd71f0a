package loadgen

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/pullsched/pullsched/workload"
)

func TestMixWeights(t *testing.T) {
	m, err := NewMix(42, 5)
	if err != nil {
		t.Fatal(err)
	}
	fns := m.Functions()
	if len(fns) != 40 {
		t.Fatalf("%d functions", len(fns))
	}
	var sum float64
	var total int64
	names := map[string]bool{}
	for _, f := range fns {
		sum += f.Weight
		total += f.Count
		names[f.Name] = true
		if !strings.HasPrefix(f.Name, f.Base+"-") || len(f.Payload) == 0 {
			t.Errorf("function %+v", f)
		}
		if p, ok := workload.ProfileFor(f.Name); !ok || p.Name != f.Base || string(p.Payload) != string(f.Payload) {
			t.Errorf("%s: profile %+v %v", f.Name, p, ok)
		}
	}
	if len(names) != 40 || !names["chameleon-0"] || !names["pyaes-4"] {
		t.Errorf("names %v", names)
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("weights sum to %v", sum)
	}
	for _, f := range fns {
		if want := float64(f.Count) / float64(total); math.Abs(f.Weight-want) > 1e-15 {
			t.Errorf("%s weight %v, want %v", f.Name, f.Weight, want)
		}
	}
}

func TestSampleCounts(t *testing.T) {
	counts := workload.AzureCounts()
	a := SampleCounts(counts, 40, 7)
	b := SampleCounts(counts, 40, 7)
	c := SampleCounts(counts, 40, 8)
	if !slices.Equal(a, b) {
		t.Error("same seed, different sample")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same sample")
	}
	// Without replacement: drawing all gives a permutation of the input.
	all := SampleCounts(counts, len(counts)+10, 7)
	x, y := slices.Clone(all), slices.Clone(counts)
	slices.Sort(x)
	slices.Sort(y)
	if !slices.Equal(x, y) {
		t.Error("full sample is not a permutation")
	}
	if counts[0] != workload.AzureCounts()[0] {
		t.Error("input modified")
	}
	// Known data: distinct values, so no value may appear twice.
	distinct := []int64{10, 20, 30, 40, 50}
	s := SampleCounts(distinct, 3, 1)
	if len(s) != 3 || s[0] == s[1] || s[1] == s[2] || s[0] == s[2] {
		t.Errorf("sample %v", s)
	}
}

func TestMixPick(t *testing.T) {
	m := &Mix{
		fns: []Function{{Name: "a", Weight: 0.5}, {Name: "zero", Weight: 0}, {Name: "b", Weight: 0.25}, {Name: "c", Weight: 0.25}},
		cum: []float64{0.5, 0.5, 0.75, 1},
	}
	for _, c := range []struct {
		u    float64
		want string
	}{{0, "a"}, {0.49, "a"}, {0.5, "b"}, {0.7, "b"}, {0.75, "c"}, {0.999999, "c"}} {
		if got := m.Pick(c.u).Name; got != c.want {
			t.Errorf("Pick(%v) = %s, want %s", c.u, got, c.want)
		}
	}
	// Over a uniform grid each function is picked in proportion to its weight.
	mix, err := NewMix(3, 5)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100000
	got := map[string]int{}
	for i := range n {
		got[mix.Pick((float64(i)+0.5)/n).Name]++
	}
	for _, f := range mix.Functions() {
		if math.Abs(float64(got[f.Name])/n-f.Weight) > 2.0/n {
			t.Errorf("%s picked %d/%d, weight %v", f.Name, got[f.Name], n, f.Weight)
		}
	}
}

func TestMixRejectsCopies(t *testing.T) {
	for _, c := range []int{0, -1, 54} {
		if _, err := NewMix(1, c); err == nil {
			t.Errorf("copies %d accepted", c)
		}
	}
	if _, err := NewMix(1, 53); err != nil {
		t.Errorf("copies 53: %v", err)
	}
}
