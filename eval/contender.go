package eval

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pullsched/pullsched/policy"
)

// Capacities a contender may advertise besides a positive number: see
// Contender.Capacity.
const (
	// CapacityUnlimited: each worker's bridge advertises no in-flight limit,
	// as Hiku's proxy has none.
	CapacityUnlimited = -1
	// CapacityDefault: the bridge's own default (no limit since it was
	// measured to cost latency; see invokerbridge.Config.Capacity).
	CapacityDefault = 0
)

// Contender is one entry of the comparison: a policy and the in-flight
// capacity each worker's bridge advertises to it.
type Contender struct {
	// Label is the entry as written, e.g. "pull@unlimited"; tables and
	// report.json name the contender by it.
	Label string
	// Policy is the policy name, e.g. "pull".
	Policy string
	// Capacity is CapacityUnlimited (-1), CapacityDefault (0) or a positive
	// number of calls.
	Capacity int
}

// ParseContender parses an entry "policy", "policy@unlimited",
// "policy@default" or "policy@N" (N >= 1). An entry without a suffix gets
// defaultCapacity. The policy must be a known policy name or alias.
func ParseContender(entry string, defaultCapacity int) (Contender, error) {
	entry = strings.TrimSpace(entry)
	pol, suffix, hasSuffix := strings.Cut(entry, "@")
	c := Contender{Label: entry, Policy: pol, Capacity: defaultCapacity}
	if pol == "" {
		return c, fmt.Errorf("%w: contender %q has no policy", ErrConfig, entry)
	}
	if _, ok := policy.Canonical(pol); !ok {
		return c, fmt.Errorf("%w: contender %q: unknown policy %q (known: %s)", ErrConfig, entry, pol, strings.Join(policy.Names(), ", "))
	}
	if !hasSuffix {
		if defaultCapacity < CapacityUnlimited {
			return c, fmt.Errorf("%w: default capacity %d (want -1 unlimited, 0 default or N >= 1)", ErrConfig, defaultCapacity)
		}
		return c, nil
	}
	switch suffix {
	case "unlimited":
		c.Capacity = CapacityUnlimited
	case "default":
		c.Capacity = CapacityDefault
	default:
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 {
			return c, fmt.Errorf("%w: contender %q: capacity %q is not unlimited, default or a number >= 1", ErrConfig, entry, suffix)
		}
		c.Capacity = n
	}
	return c, nil
}

// ParseContenders parses every entry (see ParseContender); labels must be
// distinct.
func ParseContenders(entries []string, defaultCapacity int) ([]Contender, error) {
	out := make([]Contender, 0, len(entries))
	seen := map[string]bool{}
	for _, e := range entries {
		c, err := ParseContender(e, defaultCapacity)
		if err != nil {
			return nil, err
		}
		if seen[c.Label] {
			return nil, fmt.Errorf("%w: contender %q repeated", ErrConfig, c.Label)
		}
		seen[c.Label] = true
		out = append(out, c)
	}
	return out, nil
}

// CapacityString renders a capacity: "unlimited", "default" or the number.
func CapacityString(c int) string {
	switch c {
	case CapacityUnlimited:
		return "unlimited"
	case CapacityDefault:
		return "default"
	}
	return strconv.Itoa(c)
}

// baseline returns the index of the baseline among cs: the first pull
// with unlimited capacity, else the first pull, else 0.
func baseline(cs []Contender) int {
	first := -1
	for i, c := range cs {
		if n, _ := policy.Canonical(c.Policy); n == policy.NamePull {
			if c.Capacity == CapacityUnlimited {
				return i
			}
			if first < 0 {
				first = i
			}
		}
	}
	return max(first, 0)
}
