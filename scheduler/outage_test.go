package scheduler

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// deafen makes the broker close the connection of every fetch and every
// offset listing that touches the workers topic while deaf reports true,
// as an outage looks to the scheduler reading it. It returns how many
// fetches were refused.
func deafen(t *testing.T, e *env, deaf *atomic.Bool) *atomic.Int32 {
	t.Helper()
	c := e.b.Cluster()
	name := e.names.Workers()
	info := c.TopicInfo(name) // resolved here: the control functions run on the cluster's goroutine
	if info == nil {
		t.Fatalf("topic %s does not exist", name)
	}
	id := info.TopicID
	var fetches atomic.Int32
	refused := errors.New("refused by the test")
	c.ControlKey(kmsg.Fetch.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range kr.(*kmsg.FetchRequest).Topics {
			if (rt.Topic == name || rt.TopicID == id) && deaf.Load() {
				fetches.Add(1)
				return nil, refused, true
			}
		}
		return nil, nil, false
	})
	c.ControlKey(kmsg.ListOffsets.Int16(), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range kr.(*kmsg.ListOffsetsRequest).Topics {
			if rt.Topic == name && deaf.Load() {
				return nil, refused, true
			}
		}
		return nil, nil, false
	})
	return &fetches
}

// A scheduler that cannot read the workers topic for longer than the
// heartbeat timeout keeps its healthy worker in rotation and holds an
// arrival instead of answering 503 no_workers; once it reads the topic
// again the arrival is assigned.
func TestWorkersTopicOutageKeepsRotation(t *testing.T) {
	e := newEnv(t, 1)
	res := e.results("c1")
	b1 := e.bridge("w1", 0, true)
	s, _ := e.start(e.config("s1"))
	waitRotation(t, s, "w1")

	var deaf atomic.Bool
	deaf.Store(true)
	fetches := deafen(t, e, &deaf)
	eventually(t, "workers fetches refused", func() bool { return fetches.Load() >= 2 })
	e.clock.Advance(10 * time.Second) // the outage lasts long
	jumped := e.clock.Now()
	eventually(t, "a sweep after the jump", func() bool {
		var swept bool
		inspect(t, s, func(st *state) { swept = !st.lastSweep.Before(jumped) })
		return swept
	})
	inspect(t, s, func(st *state) {
		if !st.deaf(st.now()) {
			t.Error("not deaf while the workers topic cannot be read")
		}
		if r := st.workers["w1"].rot; r != rotActive {
			t.Errorf("w1 rotation %d during the outage, want active", r)
		}
	})

	id := e.arrive("f", "c1", e.clock.Now().Add(time.Minute))
	eventually(t, "the arrival pending", func() bool {
		var pending bool
		inspect(t, s, func(st *state) { j := st.jobs[id]; pending = j != nil && j.phase == phasePending })
		return pending
	})
	deaf.Store(false)
	waitAssigned(t, id, b1)
	if r := res.get(id); r != nil {
		t.Fatalf("answered by the scheduler: %+v", r)
	}
}
