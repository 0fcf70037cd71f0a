package policy

import (
	"testing"
	"time"
)

// FuzzPolicies runs the property checks of runRandom (and, for pull, the
// internal invariants and the brute-force warm choice) over fuzzed seeds.
func FuzzPolicies(f *testing.F) {
	f.Add(uint64(1), uint8(0), int64(0))
	f.Add(uint64(99), uint8(4), int64(7))
	names := Names()
	f.Fuzz(func(t *testing.T, seed uint64, which uint8, policySeed int64) {
		name := names[int(which)%len(names)]
		p, err := New(name, Config{Seed: policySeed, KeepAlive: 15 * time.Second, VirtualNodes: 10})
		if err != nil {
			t.Fatal(err)
		}
		if pp, ok := p.(*pull); ok {
			p = checkedPull{pp, t}
		}
		runRandom(t, p, seed, 400)
	})
}
