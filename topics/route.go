package topics

// Routing: which topic each event goes to and with which key, as
// DESIGN.md fixes them. The key decides the partition: a function's
// arrivals, completions and evictions share one (co-partitioned topics),
// so one scheduler replica owns both its queue and its idle state.

// Key returns the record key of ev: the function for arrivals,
// completions and evictions; the activation id for assignments and
// results; the worker id for worker records.
func Key(ev Event) string {
	switch e := ev.(type) {
	case *Arrival:
		return e.Function
	case *Completion:
		return e.Function
	case *Eviction:
		return e.Function
	case *Assignment:
		return e.ID
	case *Result:
		return e.ID
	case *Worker:
		return e.ID
	}
	return ""
}

// Topic returns the topic ev belongs on. A result's topic depends on who
// asked (results.<reply>), which the result itself does not carry, so
// Topic returns "" for results: use n.Results(reply).
func (n Names) Topic(ev Event) string {
	switch e := ev.(type) {
	case *Arrival:
		return n.Arrivals()
	case *Completion, *Eviction:
		return n.WorkerEvents()
	case *Assignment:
		return n.Invoker(e.Worker)
	case *Worker:
		return n.Workers()
	}
	return ""
}
