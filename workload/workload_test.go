package workload

import (
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"
)

func TestEmbeddedDataParses(t *testing.T) {
	if err := Err(); err != nil {
		t.Fatal(err)
	}
}

func TestFunctionBench(t *testing.T) {
	ps := FunctionBench()
	wantNames := []string{"chameleon", "dd", "float_operation", "gzip_compression",
		"json_dumps_loads", "linpack", "matmul", "pyaes"}
	if len(ps) != len(wantNames) {
		t.Fatalf("got %d profiles, want %d", len(ps), len(wantNames))
	}
	for i, p := range ps {
		if p.Name != wantNames[i] {
			t.Errorf("profile %d: name %q, want %q", i, p.Name, wantNames[i])
		}
		if p.Warm <= 0 || p.Cold <= p.Warm {
			t.Errorf("%s: cold %v warm %v: want cold > warm > 0", p.Name, p.Cold, p.Warm)
		}
		if !json.Valid(p.Payload) {
			t.Errorf("%s: payload %q is not JSON", p.Name, p.Payload)
		}
		switch p.Kind {
		case "cpu", "disk", "network":
		default:
			t.Errorf("%s: unexpected kind %q", p.Name, p.Kind)
		}
	}
	// Spot-check figures of Table I.
	lp := ps[5]
	if lp.Cold != 282*time.Millisecond || lp.Warm != 58*time.Millisecond || lp.Kind != "cpu" {
		t.Errorf("linpack = %+v", lp)
	}
	if lp.ColdExtra() != 224*time.Millisecond {
		t.Errorf("linpack cold extra = %v", lp.ColdExtra())
	}
	if string(ps[3].Payload) != `{"file_size": 5}` {
		t.Errorf("gzip payload = %s", ps[3].Payload)
	}
}

func TestFunctionBenchReturnsCopies(t *testing.T) {
	a := FunctionBench()
	a[0].Name = "changed"
	a[0].Payload[0] = 'X'
	b := FunctionBench()
	if b[0].Name != "chameleon" || b[0].Payload[0] != '{' {
		t.Fatalf("caller modification leaked into package state: %+v", b[0])
	}
}

func TestProfileFor(t *testing.T) {
	tests := []struct {
		fn     string
		want   string
		wantOK bool
	}{
		{"gzip_compression", "gzip_compression", true},
		{"gzip_compression-3", "gzip_compression", true},
		{"linpack-0", "linpack", true},
		{"linpack-12345", "linpack", true},
		{"linpack-", "", false},
		{"linpack-x", "", false},
		{"linpack-3a", "", false},
		{"linpack-3-4", "", false},
		{"-3", "", false},
		{"", "", false},
		{"unknown", "", false},
		{"unknown-1", "", false},
		{"LINPACK", "", false},
	}
	for _, tt := range tests {
		p, ok := ProfileFor(tt.fn)
		if ok != tt.wantOK || p.Name != tt.want {
			t.Errorf("ProfileFor(%q) = %q, %v; want %q, %v", tt.fn, p.Name, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBaseName(t *testing.T) {
	for in, want := range map[string]string{
		"a-1": "a", "a-b-2": "a-b", "a-": "a-", "a": "a", "-1": "-1", "a-1x": "a-1x",
	} {
		if got := BaseName(in); got != want {
			t.Errorf("BaseName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAzureCounts(t *testing.T) {
	c := AzureCounts()
	if len(c) != 424 {
		t.Fatalf("got %d counts, want 424", len(c))
	}
	var sum int64
	for _, n := range c {
		if n <= 0 {
			t.Fatalf("non-positive count %d", n)
		}
		sum += n
	}
	if sum != 1980951 {
		t.Errorf("sum = %d, want 1980951", sum)
	}
	if !sort.SliceIsSorted(c, func(i, j int) bool { return c[i] > c[j] }) {
		t.Error("counts are not sorted in descending order")
	}
	if c[0] != 535667 {
		t.Errorf("top count = %d, want 535667", c[0])
	}
	c[0] = 0
	if AzureCounts()[0] != 535667 {
		t.Error("caller modification leaked into package state")
	}
}

func TestAzureCountsByID(t *testing.T) {
	byID := AzureCountsByID()
	if len(byID) != 424 {
		t.Fatalf("got %d counts, want 424", len(byID))
	}
	var sum int64
	for _, n := range byID {
		sum += n
	}
	if sum != AzureTotalInvocations {
		t.Errorf("sum = %d, want %d", sum, AzureTotalInvocations)
	}
	// The same multiset as the ranked counts.
	sorted := append([]int64(nil), byID...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] > sorted[j] })
	if !slices.Equal(sorted, AzureCounts()) {
		t.Error("counts by function id are not a permutation of the ranked counts")
	}
	// Spot checks against azure_function_probabilities.json of the Hiku
	// repository: its first keys have probabilities 7.067312619040047e-06,
	// 5.048080442171462e-07, 5.048080442171462e-07, 1.0096160884342924e-06.
	for i, p := range []float64{7.067312619040047e-06, 5.048080442171462e-07, 5.048080442171462e-07, 1.0096160884342924e-06} {
		if got := float64(byID[i]) / AzureTotalInvocations; got != p {
			t.Errorf("position %d: %d/%d = %v, want %v", i+1, byID[i], AzureTotalInvocations, got, p)
		}
	}
	byID[0] = -1
	if AzureCountsByID()[0] != 14 {
		t.Error("caller modification leaked into package state")
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := parseFunctionBench([]byte("a,b\n")); err == nil {
		t.Error("bad header accepted")
	}
	if _, err := parseFunctionBench([]byte("function,kind,cold_ms,warm_ms,payload\nx,cpu,1,y,{}\n")); err == nil {
		t.Error("bad warm_ms accepted")
	}
	if _, err := parseFunctionBench([]byte("function,kind,cold_ms,warm_ms,payload\nx,cpu,1,1,{\n")); err == nil {
		t.Error("bad payload accepted")
	}
	if _, err := parseAzure([]byte("rank,invocations\n1,z\n"), "rank"); err == nil {
		t.Error("bad count accepted")
	}
	if _, err := parseAzure([]byte("rank,invocations\n1,2\n"), "position"); err == nil {
		t.Error("wrong key column accepted")
	}
	for _, c := range []struct{ ranked, byID []int64 }{
		{[]int64{3, 2, 1}, []int64{1, 2}},
		{[]int64{3, 2, 1}, []int64{1, 2, 2}},
		{[]int64{2, 2, 1}, []int64{1, 2, 3}},
	} {
		if err := checkSameCounts(c.ranked, c.byID); err == nil {
			t.Errorf("checkSameCounts(%v, %v) accepted", c.ranked, c.byID)
		}
	}
	if err := checkSameCounts([]int64{3, 2, 2, 1}, []int64{2, 1, 3, 2}); err != nil {
		t.Error(err)
	}
}
