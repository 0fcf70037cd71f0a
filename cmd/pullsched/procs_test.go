package main

import (
	"io"
	"runtime"
	"testing"
)

func TestApplyProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	const other = 3 // neither 1 nor, on most machines, the CPU count
	for _, tc := range []struct {
		name     string
		procs    int
		explicit bool
		env      string
		want     int
	}{
		{"part default applies", 1, false, "", 1},
		{"GOMAXPROCS variable wins over the default", 1, false, "4", other},
		{"the flag wins over the variable", 1, true, "4", 1},
		{"zero keeps what is", 0, true, "", other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GOMAXPROCS(other)
			c := &common{procs: tc.procs}
			got := applyProcs(c, tc.explicit, func(k string) string {
				if k == "GOMAXPROCS" {
					return tc.env
				}
				return ""
			})
			if got != tc.want || runtime.GOMAXPROCS(0) != tc.want {
				t.Fatalf("GOMAXPROCS %d (returned %d), want %d", runtime.GOMAXPROCS(0), got, tc.want)
			}
		})
	}
}

// The sidecar defaults to one P; the other parts keep Go's default; the
// drivers (bench, eval, ...) take no --gomaxprocs.
func TestProcsFlagDefaults(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want string // "" when the command has no such flag
	}{
		{"invoker", "1"}, {"scheduler", "0"}, {"controller", "0"}, {"broker", "0"}, {"dev", "0"}, {"bench", ""}, {"health", ""},
	} {
		var cmd command
		for _, c := range commands {
			if c.name == tc.cmd {
				cmd = c
			}
		}
		fs, _ := newFlagSet(cmd, &common{stdout: io.Discard, stderr: io.Discard})
		f := fs.Lookup("gomaxprocs")
		switch {
		case f == nil && tc.want != "":
			t.Errorf("%s: no --gomaxprocs", tc.cmd)
		case f != nil && f.DefValue != tc.want:
			t.Errorf("%s: --gomaxprocs default %s, want %q", tc.cmd, f.DefValue, tc.want)
		}
	}
}
