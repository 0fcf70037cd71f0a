package owbridge

import (
	"strings"
	"testing"

	"github.com/pullsched/pullsched/policy"
	"github.com/pullsched/pullsched/topics"
)

func TestFunctionKey(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct {
		ns     string
		action FullyQualifiedEntityName
		prefix string
	}{
		{"guest", FullyQualifiedEntityName{Path: "guest", Name: "hello", Version: "0.0.1"}, "guest.guest.hello-"},
		{"Team B", FullyQualifiedEntityName{Path: "Team B/tools", Name: "send mail@v2", Version: "1.2.0"}, "Team_B.Team_B.tools.send_mail_v2-"},
		{"guest", FullyQualifiedEntityName{Path: "guest", Name: "hello", Version: "0.0.2"}, "guest.guest.hello-"},
		{"other", FullyQualifiedEntityName{Path: "guest", Name: "hello", Version: "0.0.1"}, "other.guest.hello-"},
		{"Team_B", FullyQualifiedEntityName{Path: "Team_B/tools", Name: "send_mail_v2", Version: "1.2.0"}, "Team_B.Team_B.tools.send_mail_v2-"},
		{"ünï", FullyQualifiedEntityName{Path: "ünï", Name: "ä", Version: "0.0.1"}, "_n_._n_._-"},
		{long, FullyQualifiedEntityName{Path: long, Name: "a", Version: "0.0.1"}, ""},
		{long, FullyQualifiedEntityName{Path: long, Name: "b", Version: "0.0.1"}, ""},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		k := FunctionKey(tc.ns, tc.action)
		if !topics.ValidFunction(k) {
			t.Errorf("%q %+v: key %q is not a valid function name", tc.ns, tc.action, k)
		}
		if !strings.HasPrefix(k, tc.prefix) {
			t.Errorf("key %q, want prefix %q", k, tc.prefix)
		}
		if k != FunctionKey(tc.ns, tc.action) {
			t.Errorf("key of %q not stable", tc.ns)
		}
		orig := OriginalName(tc.ns, tc.action)
		if prev, ok := seen[k]; ok && prev != orig {
			t.Errorf("%q and %q share key %q", prev, orig, k)
		}
		seen[k] = orig
		if got, want := policy.OWHashOf(k), policy.OWGenerateHash(tc.ns, tc.action.String()); got != want {
			t.Errorf("key %q carries hash %d, want the balancer's %d", k, got, want)
		}
		if len(k) > 128 {
			t.Errorf("key %q is %d long", k, len(k))
		}
	}
	if len(seen) != len(cases) {
		t.Fatalf("%d keys for %d actions", len(seen), len(cases))
	}
}

func TestIDMapping(t *testing.T) {
	id := "5a1f0c9e2b7d4e3fa6c8b0d19e2f3a4b"
	ev := EventID(id)
	if ev != "5a1f0c9e-2b7d-4e3f-a6c8-b0d19e2f3a4b" {
		t.Fatalf("EventID = %q", ev)
	}
	if err := (&topics.Completion{ID: ev, Function: "f", Worker: "w"}).Validate(); err != nil {
		t.Fatalf("event id rejected: %v", err)
	}
	if ActivationIDOf(ev) != id {
		t.Fatalf("round trip %q", ActivationIDOf(ev))
	}
	// Not a UUID version 4: OpenWhisk ids are any 32 hex digits.
	odd := "00000000000000000000000000000000"
	if err := (&topics.Completion{ID: EventID(odd), Function: "f", Worker: "w"}).Validate(); err != nil {
		t.Fatalf("all-zero id rejected: %v", err)
	}
	for w, want := range map[string]int{"invoker0": 0, "invoker17": 17} {
		if n, ok := InvokerOf(w); !ok || n != want || WorkerID(n) != w {
			t.Errorf("InvokerOf(%q) = %d, %v", w, n, ok)
		}
	}
	for _, bad := range []string{"invoker", "invoker01", "invoker-1", "x3", "invokerx"} {
		if _, ok := InvokerOf(bad); ok {
			t.Errorf("InvokerOf(%q) accepted", bad)
		}
	}
	if !isHealthTest(FullyQualifiedEntityName{Path: "whisk.system", Name: "invokerHealthTestAction0"}) ||
		isHealthTest(FullyQualifiedEntityName{Path: "guest", Name: "invokerHealthTestAction0"}) {
		t.Fatal("health test recognition")
	}
}
