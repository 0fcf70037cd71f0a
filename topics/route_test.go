package topics

import "testing"

func TestKeysAndTopics(t *testing.T) {
	n := NewNames("p.")
	cases := []struct {
		ev         Event
		key, topic string
	}{
		{&Arrival{ID: rid, Function: "f"}, "f", "p.arrivals"},
		{&Completion{ID: rid, Function: "f", Worker: "w"}, "f", "p.worker-events"},
		{&Eviction{Function: "f", Worker: "w"}, "f", "p.worker-events"},
		{&Assignment{ID: rid, Function: "f", Worker: "w"}, rid, "p.invoker.w"},
		{&Result{ID: rid, Status: 200}, rid, ""},
		{&Worker{ID: "w", State: WorkerActive}, "w", "p.workers"},
	}
	for _, c := range cases {
		if k := Key(c.ev); k != c.key {
			t.Errorf("%s key %q, want %q", c.ev.Kind(), k, c.key)
		}
		if tp := n.Topic(c.ev); tp != c.topic {
			t.Errorf("%s topic %q, want %q", c.ev.Kind(), tp, c.topic)
		}
	}
}

const rid = "0123456789abcdef0123456789abcdef"

func TestReasonStatus(t *testing.T) {
	for reason, want := range map[string]int{
		ReasonOverloaded: 429, ReasonNoWorkers: 503, ReasonUnavailable: 503, ReasonTimeout: 504, ReasonWorkerFailed: 502,
	} {
		if got, ok := ReasonStatus(reason); !ok || got != want {
			t.Errorf("ReasonStatus(%q) = %d, %v; want %d", reason, got, ok, want)
		}
	}
	if got, ok := ReasonStatus("made_up"); ok {
		t.Errorf("unknown reason answered %d", got)
	}
}
