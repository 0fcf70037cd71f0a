package main

import (
	"slices"
	"testing"

	"github.com/pullsched/pullsched/benchchain"
)

func TestAddExternals(t *testing.T) {
	var ch benchchain.Config
	err := addExternals(&ch, repeated{"hiku=http://127.0.0.1:9020/run/", "other=http://h:1/x/{fn}?a=1,b=2"},
		repeated{"hiku=42"}, repeated{"other=/bin/proxy -c conf.json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Externals) != 2 || ch.Externals[0].Name != "hiku" || ch.Externals[0].PID != 42 ||
		ch.Externals[1].URL != "http://h:1/x/{fn}?a=1,b=2" || !slices.Equal(ch.Externals[1].Command, []string{"/bin/proxy", "-c", "conf.json"}) {
		t.Errorf("externals %+v", ch.Externals)
	}
	for _, tc := range []struct{ ext, pids, cmds repeated }{
		{ext: repeated{"nourl"}},
		{ext: repeated{"a=http://h:1/"}, pids: repeated{"b=1"}},
		{ext: repeated{"a=http://h:1/"}, pids: repeated{"a=x"}},
		{ext: repeated{"a=http://h:1/"}, cmds: repeated{"b=/bin/x"}},
		{ext: repeated{"a=http://h:1/"}, cmds: repeated{"a= "}},
	} {
		var c benchchain.Config
		if err := addExternals(&c, tc.ext, tc.pids, tc.cmds); err == nil {
			t.Errorf("%+v accepted", tc)
		}
	}
}
