package loadgen

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/pullsched/pullsched/workload"
)

// The hand-computed values below come from a few lines of JavaScript
// written for this test (not the Hiku script) and run with node 20: the
// published sfc32 arithmetic, and for the seeding the first four values of
// Go's rand.New(rand.NewSource(seed)).Float64, which is what k6's
// randomSeed(seed) makes Math.random return:
//
//	seed 0:          0.9451961492941164 0.24496508529377975 0.6559562651954052 0.05434383959970039
//	seed 1712345678: 0.7034952313114692 0.39518391642935113 0.12788437904482763 0.42693252476645865

func TestSFC32(t *testing.T) {
	for _, c := range []struct {
		seed [4]uint32
		want []float64
	}{
		{[4]uint32{1, 2, 3, 4}, []float64{1.6298145055770874e-9, 7.916241884231567e-9, 0.01318361610174179, 0.043977586552500725, 0.7988984857220203}},
		{[4]uint32{3735928559, 0, 4294967295, 12345}, []float64{0.8698415253311396, 0.0000028724316507577896, 0.8266234775073826, 0.8801849198061973, 0.16465024347417057}},
	} {
		s := &sfc32{c.seed[0], c.seed[1], c.seed[2], c.seed[3]}
		for i, want := range c.want {
			if got := s.next(); got != want {
				t.Errorf("sfc32%v output %d = %v, want %v", c.seed, i, got, want)
			}
		}
	}
}

func TestVUStreamSeeding(t *testing.T) {
	for _, c := range []struct {
		seed  int64
		vu    int
		words [4]uint32
		want  []float64
	}{
		{0, 1, [4]uint32{4059596549, 1052127029, 2817320706, 233415013},
			[]float64{0.2445120585616678, 0.20274666557088494, 0.0445760244037956, 0.8512283992022276, 0.7189606353640556}},
		{0, 100, [4]uint32{4060586549, 1053117029, 2818310706, 234405013},
			[]float64{0.2452035655733198, 0.20579487644135952, 0.6390481314156204, 0.35666407574899495, 0.410618714755401}},
		{1712345678, 20, [4]uint32{3021689011, 1697501996, 549459225, 1833861231},
			[]float64{0.5257513704709709, 0.9733660272322595, 0.045837223529815674, 0.5068728043697774, 0.4482116028666496}},
	} {
		s := newVUStream(c.seed, c.vu)
		if got := [4]uint32{s.a, s.b, s.c, s.d}; got != c.words {
			t.Errorf("seed %d VU %d: words %v, want %v", c.seed, c.vu, got, c.words)
		}
		for i, want := range c.want {
			if got := s.next(); got != want {
				t.Errorf("seed %d VU %d: output %d = %v, want %v", c.seed, c.vu, i, got, want)
			}
		}
	}
}

// The reference script, transliterated. refInit and the refVU methods
// follow evaluation/load_test.js statement by statement, with JavaScript's
// number semantics written out, and share no code with pervu.go. The
// probability table's keys are stand-ins for the function hashes, in the
// same (sorted) order.

var refBenchmarks = []string{"chameleon", "dd", "float_operation", "gzip_compression",
	"json_dumps_loads", "linpack", "matmul", "pyaes"}

type refEntry struct {
	key         string
	probability float64
}

type refVU struct {
	nCopies         int
	getRand         func() float64
	sampledFuncs    []string
	sampledProbDict []refEntry
}

// toUint32 is ECMAScript's ToUint32, what `>>> 0` applies.
func toUint32(x float64) uint32 {
	x = math.Mod(math.Trunc(x), 4294967296)
	if x < 0 {
		x += 4294967296
	}
	return uint32(x)
}

// refSFC32 is the script's sfc32, on int32 words as `| 0` keeps them.
func refSFC32(a, b, c, d int32) func() float64 {
	return func() float64 {
		t := (a + b) + d
		d = d + 1
		a = b ^ int32(uint32(b)>>9)
		b = c + c<<3
		c = int32(uint32(c)<<21 | uint32(c)>>11)
		c = c + t
		return float64(uint32(t)) / 4294967296
	}
}

func refInit(seed int64, vu, nCopies int) *refVU {
	var probabilities []refEntry // the JSON file, in key order
	for i, n := range workload.AzureCountsByID() {
		probabilities = append(probabilities, refEntry{fmt.Sprintf("f%03d", i), float64(n) / 1980951})
	}
	var uniqueFuncs []string
	for _, e := range probabilities {
		uniqueFuncs = append(uniqueFuncs, e.key)
	}
	mathRandom := rand.New(rand.NewSource(seed)).Float64 // randomSeed(SEED)
	seedgen := func() int32 { return int32(toUint32(float64(vu)*10000 + mathRandom()*math.Pow(2, 32))) }
	v := &refVU{nCopies: nCopies}
	a := seedgen()
	b := seedgen()
	c := seedgen()
	d := seedgen()
	v.getRand = refSFC32(a, b, c, d)
	sort.SliceStable(uniqueFuncs, func(_, _ int) bool { return v.getRand()-0.5 < 0 })
	v.sampledFuncs = uniqueFuncs[:len(refBenchmarks)*nCopies]
	for _, e := range probabilities {
		if slices.Contains(v.sampledFuncs, e.key) {
			v.sampledProbDict = append(v.sampledProbDict, e)
		}
	}
	totalProb := 0.0
	for _, e := range v.sampledProbDict {
		totalProb += e.probability
	}
	for i := range v.sampledProbDict {
		v.sampledProbDict[i].probability = v.sampledProbDict[i].probability / totalProb
	}
	return v
}

func (v *refVU) weightedRandomChoice() (string, bool) {
	randomValue := v.getRand()
	accumulatedProb := 0.0
	for _, e := range v.sampledProbDict {
		accumulatedProb += e.probability
		if randomValue <= accumulatedProb {
			return e.key, true
		}
	}
	return "", false
}

// request is the first half of the default function: the name it posts to.
func (v *refVU) request() string {
	chosenFunc, ok := v.weightedRandomChoice()
	if !ok {
		panic("weightedRandomChoice returned undefined")
	}
	benchmarkMap := map[int]string{}
	for copy := 0; copy < v.nCopies; copy++ {
		for i := range refBenchmarks {
			benchmarkMap[copy*len(refBenchmarks)+i] = refBenchmarks[i] + "-" + strconv.Itoa(copy)
		}
	}
	return benchmarkMap[slices.Index(v.sampledFuncs, chosenFunc)]
}

// sleep is the second half: the think time in seconds.
func (v *refVU) sleep() float64 { return v.getRand()*0.9 + 0.1 }

// weights returns the VU's normalised probability per function name.
func (v *refVU) weights() map[string]float64 {
	out := map[string]float64{}
	for _, e := range v.sampledProbDict {
		k := slices.Index(v.sampledFuncs, e.key)
		out[refBenchmarks[k%len(refBenchmarks)]+"-"+strconv.Itoa(k/len(refBenchmarks))] = e.probability
	}
	return out
}

// TestPerVUMatchesScript checks every VU's weights, functions and think
// times against the transliterated script, draw for draw, and that over
// 100 VUs the functions' frequencies match the aggregate weights the
// report lists, which a shared mix's do not.
func TestPerVUMatchesScript(t *testing.T) {
	for _, c := range []struct {
		seed        int64
		copies      int
		vus, iters  int
		checkShares bool
	}{
		{0, 5, 100, 500, true},
		{1712345678, 5, 100, 500, true},
		{7, 1, 20, 100, false},
		{7, 53, 10, 20, false},
	} {
		vus, iters := c.vus, c.iters
		mixes, err := newVUMixes(c.seed, c.copies, vus, 100*time.Millisecond, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		freq := map[string]float64{}
		for _, m := range mixes {
			ref := refInit(c.seed, m.id, c.copies)
			want := ref.weights()
			for i, fi := range m.fn {
				if name := m.fns[fi].Name; m.weight[i] != want[name] {
					t.Fatalf("seed %d copies %d VU %d: %s weight %v, script %v", c.seed, c.copies, m.id, name, m.weight[i], want[name])
				}
			}
			if len(m.fn) != len(want) {
				t.Fatalf("seed %d VU %d: %d functions, script %d", c.seed, m.id, len(m.fn), len(want))
			}
			for i := range iters {
				got, want := m.function().Name, ref.request()
				if got != want {
					t.Fatalf("seed %d copies %d VU %d request %d: %s, script %s", c.seed, c.copies, m.id, i, got, want)
				}
				freq[got] += 1 / float64(vus*iters)
				if got, want := m.think().Seconds(), ref.sleep(); math.Abs(got-want) > 1e-9 {
					t.Fatalf("seed %d VU %d think %d: %v s, script %v s", c.seed, m.id, i, got, want)
				}
			}
		}
		if !c.checkShares {
			continue
		}
		maxDiff := func(weights []Function) float64 {
			d := 0.0
			for _, f := range weights {
				d = max(d, math.Abs(freq[f.Name]-f.Weight))
			}
			return d
		}
		if d := maxDiff(aggregate(mixes)); d > 0.005 {
			t.Errorf("seed %d: frequencies differ from the aggregate weights by up to %.4f", c.seed, d)
		}
		shared, _ := NewMix(c.seed, c.copies)
		if d := maxDiff(shared.Functions()); d < 0.05 {
			t.Errorf("seed %d: the shared mix is within %.4f of the per-VU frequencies; the check cannot tell them apart", c.seed, d)
		}
	}
}

// TestPerVUFlatterThanShared pins the point of per-VU mixes: in aggregate
// no function has more than a few percent of the requests, where one shared
// mix gives its top function a fifth to nine tenths of them. It fails if
// the default mode stops being per-VU.
func TestPerVUFlatterThanShared(t *testing.T) {
	cfg := Config{Target: "http://127.0.0.1:1"}.WithDefaults()
	err := cfg.Validate()
	if err != nil || cfg.MixMode != MixPerVU {
		t.Fatalf("default mix mode %q (%v), want %q", cfg.MixMode, err, MixPerVU)
	}
	top := func(fns []Function) (w float64) {
		for _, f := range fns {
			w = max(w, f.Weight)
		}
		return w
	}
	for _, seed := range []int64{0, 1, 42, 1712345678} {
		mixes, err := newVUMixes(seed, 5, 100, cfg.ThinkMin, cfg.ThinkMax)
		if err != nil {
			t.Fatal(err)
		}
		shared, _ := NewMix(seed, 5)
		perVU, one := top(aggregate(mixes)), top(shared.Functions())
		if perVU > 0.08 || one < 0.2 {
			t.Errorf("seed %d: top weight %.3f per VU (want <= 0.08), %.3f shared (want >= 0.2)", seed, perVU, one)
		}
	}
}

// TestVUMixCoversEveryDraw checks that every VU's running sum reaches the
// largest value getRand returns, so pick's fallback is never taken.
func TestVUMixCoversEveryDraw(t *testing.T) {
	for _, copies := range []int{1, 5, 53} {
		mixes, err := newVUMixes(3, copies, 100, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mixes {
			if last := m.cum[len(m.cum)-1]; last < maxSFC32 {
				t.Fatalf("copies %d VU %d: weights sum to %v < %v", copies, m.id, last, maxSFC32)
			}
			if len(m.fn) != 8*copies {
				t.Fatalf("copies %d VU %d: %d functions", copies, m.id, len(m.fn))
			}
		}
	}
	m := &vuMix{fn: []int{4, 7}, cum: []float64{0.5, 0.9}}
	for u, want := range map[float64]int{0: 4, 0.5: 4, 0.50001: 7, 0.9: 7, 0.95: 7} {
		if got := m.pick(u); got != want {
			t.Errorf("pick(%v) = %d, want %d", u, got, want)
		}
	}
}

func TestVUIDs(t *testing.T) {
	seq := func(lo, hi int) []int {
		var out []int
		for i := lo; i <= hi; i++ {
			out = append(out, i)
		}
		return out
	}
	for _, c := range []struct {
		stages []int
		want   [][]int
	}{
		{[]int{20, 50, 100}, [][]int{seq(1, 20), seq(21, 70), slices.Concat(seq(71, 100), seq(1, 20), seq(21, 70))}},
		{[]int{2, 4}, [][]int{{1, 2}, {3, 4, 1, 2}}},
		{[]int{3, 3, 2}, [][]int{{1, 2, 3}, {1, 2, 3}, {1, 2}}},
		{[]int{4, 1, 2}, [][]int{{1, 2, 3, 4}, {1}, {2, 3}}},
	} {
		var stages []Stage
		for _, n := range c.stages {
			stages = append(stages, Stage{VUs: n, Duration: time.Second})
		}
		got := vuIDs(stages)
		if len(got) != len(c.want) {
			t.Fatalf("%v: %v", c.stages, got)
		}
		for i := range got {
			if !slices.Equal(got[i], c.want[i]) {
				t.Errorf("%v: stage %d ids %v, want %v", c.stages, i, got[i], c.want[i])
			}
		}
	}
}

// TestSharedMixUnchanged pins the shared mix to the one loadgen drew
// before per-VU mixes became the default (the table of scripts/k6/hiku.js
// for seed 0).
func TestSharedMixUnchanged(t *testing.T) {
	m, err := NewMix(0, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"chameleon-0": 2, "chameleon-3": 46, "dd-2": 1587, "json_dumps_loads-4": 12240,
		"pyaes-1": 6950, "pyaes-2": 7240, "pyaes-4": 672, "matmul-4": 1573}
	var total int64
	for _, f := range m.Functions() {
		total += f.Count
		if n, ok := want[f.Name]; ok && f.Count != n {
			t.Errorf("%s count %d, want %d", f.Name, f.Count, n)
		}
	}
	if total != 34540 {
		t.Errorf("total %d, want 34540", total)
	}
}
