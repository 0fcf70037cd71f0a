package main

import (
	"strings"
	"testing"
)

// TestOpenWhiskSettings: the bridge's settings arrive from flags and the
// environment, and bad ones stop it before it connects.
func TestOpenWhiskSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"same prefixes by flag", nil, []string{"openwhisk", "--ow-controller-prefix", "x.", "--ow-invoker-prefix", "x.", "--listen", ""}, "equals the invoker prefix"},
		{"same prefixes by env", map[string]string{"PULLSCHED_OW_CONTROLLER_PREFIX": "y.", "PULLSCHED_OW_INVOKER_PREFIX": "y."}, []string{"openwhisk", "--listen", ""}, "equals the invoker prefix"},
		{"no controller prefix", nil, []string{"openwhisk", "--ow-controller-prefix", "", "--listen", ""}, "no controller prefix"},
		{"bad size", nil, []string{"openwhisk", "--facade-user-memory", "lots", "--listen", ""}, "--facade-user-memory"},
		{"bad controller id", nil, []string{"openwhisk", "--ow-controllers", "0,a/b", "--listen", ""}, `controller id "a/b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmd(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q\n%s", err, tc.want, out)
			}
		})
	}
	out, err := runCmd(t, nil, "openwhisk", "-h")
	if err != nil || !strings.Contains(out, "ow-controller-prefix") {
		t.Fatalf("help: %v\n%s", err, out)
	}
}
