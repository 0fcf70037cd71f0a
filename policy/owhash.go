package policy

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// NameOWHash is OpenWhisk's ShardingContainerPoolBalancer placement: a
// home worker from the hash of the function, then a walk with a step
// coprime to the worker count, and a random active worker when every one
// is full.
const NameOWHash = "ow-hash"

// JavaStringHash is Java's String.hashCode of s: the sum of
// c[i]·31^(n-1-i) over its UTF-16 code units, in 32-bit two's complement.
func JavaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 { // a surrogate pair: two code units
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// OWGenerateHash is the balancer's generateHash: (namespace.hashCode ^
// action.hashCode).abs, where action is the fully qualified name without
// version ("namespace/[package/]name"). Like Scala's Int.abs it leaves
// math.MinInt32 negative.
func OWGenerateHash(namespace, action string) int32 {
	h := JavaStringHash(namespace) ^ JavaStringHash(action)
	if h < 0 {
		h = -h // MinInt32 stays MinInt32, as in Scala
	}
	return h
}

// OWCoprimeSteps is the balancer's pairwiseCoprimeNumbersUntil(n): the
// numbers of 1..n, in order, that are coprime to n and to every number
// taken before them. It is empty for n < 1.
func OWCoprimeSteps(n int) []int {
	var out []int
	for cur := 1; cur <= n; cur++ {
		if gcd(cur, n) != 1 {
			continue
		}
		ok := true
		for _, p := range out {
			if gcd(p, cur) != 1 {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, cur)
		}
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// OWHashSuffix marks a function name that carries its OpenWhisk hash: a
// name ending in OWHashSuffix and 8 lower-case hex digits (the OpenWhisk
// bridge's function keys) is placed by that 32-bit value, the stock
// balancer's generateHash of the activation's namespace and action, so
// ow-hash picks the invoker index the stock controller would.
const OWHashSuffix = ".owh"

// OWHashOf is the hash ow-hash places fn by: the one fn carries after
// OWHashSuffix, else OWGenerateHash("", fn).
func OWHashOf(fn string) int32 {
	const n = len(OWHashSuffix) + 8
	if len(fn) > n && fn[len(fn)-n:len(fn)-8] == OWHashSuffix {
		var v uint32
		ok := true
		for i := len(fn) - 8; i < len(fn); i++ {
			c := fn[i]
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | uint32(c-'0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | uint32(c-'a'+10)
			default:
				ok = false
			}
		}
		if ok {
			return int32(v)
		}
	}
	return OWGenerateHash("", fn)
}

// OWHomeAndStep returns the home index and the step of hash among n
// workers: hash mod n, and the step at hash mod the number of steps. n
// must be at least 1. A negative hash (only math.MinInt32) is taken
// modulo n into [0, n), where Scala would fail on the negative index.
func OWHomeAndStep(hash int32, n int) (home, step int) {
	steps := OWCoprimeSteps(n)
	home = int(hash) % n
	si := int(hash) % len(steps)
	if home < 0 {
		home += n
	}
	if si < 0 {
		si += len(steps)
	}
	return home, steps[si]
}

// owHash reproduces the ShardingContainerPoolBalancer of OpenWhisk:
//
//   - every worker that ever joined keeps its place in the list, ordered
//     by its id's name and trailing number (invoker0, invoker1, ...
//     invoker10), as the balancer keeps an offline invoker's index;
//   - the home index is the function's hash modulo the list's length and
//     the step one of the pairwise coprime numbers up to that length,
//     chosen by the same hash; the walk takes the first active worker
//     with room;
//   - when none has room, the balancer forces the work onto a random
//     healthy invoker, where it queues; ow-hash answers NoCapacity
//     instead, as every pullsched policy does, and the work waits in the
//     scheduler's pending queue until a slot frees. With unlimited
//     capacity (0) no worker is ever full and the home worker always
//     takes the work.
//
// The hash is the one a function name carries (see OWHashSuffix: the
// OpenWhisk bridge's keys carry the stock balancer's hash of namespace and
// action, so an action's home is the stock one's), else OWGenerateHash's
// over the name alone.
// Room is the in-flight count against the worker's capacity, which the
// OpenWhisk bridge derives from the invoker's user memory; the balancer
// counts memory megabytes per action instead, which is the same when
// actions share one memory size. Action concurrency (maxConcurrent > 1)
// is not modelled.
type owHash struct {
	base
	order []int32 // indices into ws, by id
	built int     // len(ws) when order was built
	steps []int   // OWCoprimeSteps(len(order))
}

var _ Policy = (*owHash)(nil)

func newOWHash(cfg Config) *owHash { return &owHash{base: newBase(NameOWHash, cfg)} }

// idOrder compares worker ids by the text before their trailing digits,
// then by the number those digits make, then as strings.
func idOrder(a, b string) int {
	pa, na, oka := splitNumber(a)
	pb, nb, okb := splitNumber(b)
	if c := strings.Compare(pa, pb); c != 0 || !oka || !okb {
		if c != 0 {
			return c
		}
		return strings.Compare(a, b)
	}
	if c := cmp.Compare(na, nb); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func splitNumber(s string) (string, uint64, bool) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) {
		return s, 0, false
	}
	n, err := strconv.ParseUint(s[i:], 10, 64)
	if err != nil {
		return s, 0, false
	}
	return s[:i], n, true
}

// sync rebuilds the order when a new worker joined.
func (p *owHash) sync() {
	if p.built == len(p.ws) {
		return
	}
	p.order = p.order[:0]
	for w := range p.ws {
		p.order = append(p.order, int32(w))
	}
	slices.SortFunc(p.order, func(a, b int32) int { return idOrder(p.ws[a].id, p.ws[b].id) })
	p.steps = OWCoprimeSteps(len(p.order))
	p.built = len(p.ws)
}

// Pick implements Policy.
func (p *owHash) Pick(r Request) Decision {
	if p.active == 0 {
		return Decision{Code: NoWorkers}
	}
	p.sync()
	n := len(p.order)
	home, step := OWHomeAndStep(OWHashOf(r.Function), n)
	i := home
	for k := 0; k < n; k++ {
		if w := p.order[i]; p.ws[w].eligible() {
			return p.placed(w)
		}
		i = (i + step) % n
	}
	// Every worker is full. The balancer would force the work onto a
	// random healthy invoker, to queue there; pullsched keeps it in its
	// pending queue instead and places it when a slot frees.
	return Decision{Code: NoCapacity}
}
