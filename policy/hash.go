package policy

import (
	"slices"
)

// hashString is 64-bit FNV-1a followed by a murmur3-style finaliser, so
// that short, similar names ("f1", "f2") land far apart on the ring. It does
// not allocate.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is a bijective avalanche finaliser.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// ring is a consistent-hash ring of the active workers with vnodes points
// each. It is rebuilt lazily when the cluster's membership changes; loads
// and capacity do not move points.
type ring struct {
	vnodes  int
	points  []uint64
	owners  []int32
	version uint64 // cluster.members at the last build
	built   bool
}

type ringPoint struct {
	h uint64
	w int32
}

// sync rebuilds the ring if membership changed since the last build.
func (r *ring) sync(c *cluster) {
	if r.built && r.version == c.members {
		return
	}
	pts := make([]ringPoint, 0, c.active*r.vnodes)
	for w := range c.ws {
		if c.ws[w].state != stateActive {
			continue
		}
		base := hashString(c.ws[w].id)
		for i := 0; i < r.vnodes; i++ {
			pts = append(pts, ringPoint{h: mix64(base + uint64(i+1)*0x9e3779b97f4a7c15), w: int32(w)})
		}
	}
	slices.SortFunc(pts, func(a, b ringPoint) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		default:
			return int(a.w - b.w)
		}
	})
	r.points = r.points[:0]
	r.owners = r.owners[:0]
	for _, p := range pts {
		r.points = append(r.points, p.h)
		r.owners = append(r.owners, p.w)
	}
	r.version = c.members
	r.built = true
}

// start returns the index of the first point at or after key's hash,
// wrapping around. The ring must not be empty.
func (r *ring) start(key string) int {
	h := hashString(key)
	i, _ := slices.BinarySearch(r.points, h)
	if i == len(r.points) {
		i = 0
	}
	return i
}
