package main

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/pullsched/pullsched/workload"
)

// TestScriptUpToDate fails when hiku.js no longer carries the mix loadgen
// draws for seed 0 and 5 copies, or the counts by function id.
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
	// COUNTS_BY_ID holds the 424 counts in the trace's hashed-id order.
	_, after, _ := bytes.Cut(block, []byte("const COUNTS_BY_ID = ["))
	list, _, _ := bytes.Cut(after, []byte("];"))
	var counts []int64
	for _, f := range bytes.Fields(bytes.ReplaceAll(list, []byte(","), []byte(" "))) {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
	}
	if !slices.Equal(counts, workload.AzureCountsByID()) {
		t.Errorf("COUNTS_BY_ID has %d counts, not the workload's %d in order", len(counts), len(workload.AzureCountsByID()))
	}
	if _, err := os.Stat("../hiku.js"); err != nil {
		t.Fatal(err)
	}
}
