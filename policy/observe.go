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
