package main

import (
	"bytes"
	"os"
	"testing"
)

// TestScriptUpToDate fails when hiku.js no longer carries the mix loadgen
// draws for seed 0 and 5 copies.
func TestScriptUpToDate(t *testing.T) {
	if err := run("../hiku.js", 0, 5, true); err != nil {
		t.Fatal(err)
	}
}

func TestSplice(t *testing.T) {
	got, err := splice([]byte("a\n// BEGIN MIX old\nx\n// END MIX\nb\n"), []byte("// BEGIN MIX\nnew\n// END MIX\n"))
	if err != nil || string(got) != "a\n// BEGIN MIX\nnew\n// END MIX\nb\n" {
		t.Errorf("%q %v", got, err)
	}
	if _, err := splice([]byte("no block"), nil); err == nil {
		t.Error("spliced a script without markers")
	}
	block, err := mixBlock(0, 5)
	if err != nil || bytes.Count(block, []byte("name:")) != 40 {
		t.Errorf("block %s %v", block, err)
	}
	if _, err := os.Stat("../hiku.js"); err != nil {
		t.Fatal(err)
	}
}
