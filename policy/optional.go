package policy

// IdleForgetter is implemented by policies that keep per-function idle
// state (pull). A scheduler calls Forget when it stops owning a function
// (the function's partition moved to another replica): the idle queue is
// then the new owner's to keep, and a later rebuild here, should the
// partition come back, starts from a clean slate instead of doubling
// entries.
type IdleForgetter interface {
	// Forget drops every idle entry of function. In-flight counts are not
	// touched.
	Forget(function string)
}

var _ IdleForgetter = (*pull)(nil)

// Forget implements IdleForgetter.
func (p *pull) Forget(function string) {
	f, ok := p.fids[function]
	if !ok {
		return
	}
	for len(p.fheaps[f]) > 0 {
		p.drop(p.fheaps[f][0])
	}
}

// WarmChecker is implemented by policies that keep per-function idle
// queues. A scheduler holding requests that a policy deferred asks it
// which of them a worker could now start warm.
type WarmChecker interface {
	// WarmReady reports whether Pick for function would now return a warm
	// decision: the function has an idle instance on a worker with room.
	WarmReady(function string) bool
}

var _ WarmChecker = (*pull)(nil)

// WarmReady implements WarmChecker.
func (p *pull) WarmReady(function string) bool {
	f, ok := p.fids[function]
	if !ok {
		return false
	}
	_, ok = p.top(f)
	return ok
}
