package eval

import (
	"fmt"
	"strconv"
	"strings"
)

// Scenario is a cluster setting the contenders are compared in: the sandbox
// memory of every simulated worker.
type Scenario struct {
	// Name is "16g", "paper", "4g", or "custom-<MB>".
	Name string
	// MemoryMB is the sandbox memory per worker in MB.
	MemoryMB int
}

// PaperMemoryMB is the worker memory of the "paper" scenario: the memory at
// which pull lands near the Hiku paper's 30% cold starts on this workload.
// Chosen by measurement: pull (unlimited capacity, per-VU workload, seed
// 1, 40 s stages at time scale 0.2) had 63% cold starts at 6 GiB, 44% at
// 8 GiB, 32% at 9 GiB and 24% at 10 GiB (docs/EVALUATION.md).
const PaperMemoryMB = 9216

// Scenarios returns the named scenarios, in the order they run by default:
// 16g (16384 MB per worker, the paper's m5.xlarge: memory to spare), paper
// (PaperMemoryMB: about the paper's cold-start rate) and 4g (4096 MB:
// memory pressure).
func Scenarios() []Scenario {
	return []Scenario{{"16g", 16384}, {"paper", PaperMemoryMB}, {"4g", 4096}}
}

// CustomScenario is the scenario of an explicit memory size: "custom-<MB>".
func CustomScenario(memoryMB int) Scenario {
	return Scenario{Name: "custom-" + strconv.Itoa(memoryMB), MemoryMB: memoryMB}
}

// ScenarioByName returns the named scenario (see Scenarios), or the custom
// one a name "custom-<MB>" describes; false for any other name.
func ScenarioByName(name string) (Scenario, bool) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, true
		}
	}
	if mb, ok := strings.CutPrefix(name, "custom-"); ok {
		if n, err := strconv.Atoi(mb); err == nil && n > 0 && strconv.Itoa(n) == mb {
			return CustomScenario(n), true
		}
	}
	return Scenario{}, false
}

// selectScenarios resolves the scenarios of a run: the one custom scenario
// of memoryMB when it is positive, else the named ones (all by default).
// Naming scenarios and a memory size at once is an error: one of them
// would be ignored.
func selectScenarios(names []string, memoryMB int) ([]Scenario, error) {
	switch {
	case memoryMB < 0:
		return nil, fmt.Errorf("%w: memory %d MB < 0", ErrConfig, memoryMB)
	case memoryMB > 0 && len(names) > 0:
		return nil, fmt.Errorf("%w: scenarios %s and memory %d MB both given; --memory-mb is the scenario custom-%d",
			ErrConfig, strings.Join(names, ","), memoryMB, memoryMB)
	case memoryMB > 0:
		return []Scenario{CustomScenario(memoryMB)}, nil
	case len(names) == 0:
		return Scenarios(), nil
	}
	var out []Scenario
	seen := map[string]bool{}
	for _, n := range names {
		s, ok := ScenarioByName(n)
		if !ok {
			return nil, fmt.Errorf("%w: unknown scenario %q (known: %s, custom-<MB>)", ErrConfig, n, scenarioNames())
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%w: scenario %q repeated", ErrConfig, n)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
}

func scenarioNames() string {
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}
