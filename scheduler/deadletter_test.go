package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
)

func TestJunkWorkersReplay(t *testing.T) {
	bad := errors.New("bad")
	rec := func(key, value string) *kgo.Record {
		r := &kgo.Record{Key: []byte(key)}
		if value != "" {
			r.Value = []byte(value)
		}
		return r
	}
	type step struct {
		r   *kgo.Record
		err error
	}
	for _, tc := range []struct {
		name      string
		replay    []step
		wantNow   int // dead-lettered while replaying
		wantAtEnd []string
	}{
		{"junk kept to the end", []step{{rec("a", "x"), bad}, {rec("b", "{}"), nil}}, 0, []string{"a"}},
		{"junk replaced by its bridge", []step{{rec("a", "x"), bad}, {rec("a", "{}"), nil}}, 0, nil},
		{"junk deleted by a tombstone", []step{{rec("a", "x"), bad}, {rec("a", ""), bad}}, 0, nil},
		{"junk again after a valid record", []step{{rec("a", "x"), bad}, {rec("a", "{}"), nil}, {rec("a", "y"), bad}}, 0, []string{"a"}},
		{"keyless junk at once", []step{{rec("", "x"), bad}}, 1, nil},
		{"order kept", []step{{rec("b", "x"), bad}, {rec("a", "x"), bad}}, 0, []string{"b", "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJunkWorkers()
			now := 0
			for _, s := range tc.replay {
				now += len(j.read(s.r, s.err))
			}
			if now != tc.wantNow {
				t.Errorf("dead-lettered during the replay: %d, want %d", now, tc.wantNow)
			}
			var keys []string
			for _, r := range j.caughtUp() {
				keys = append(keys, string(r.r.Key))
			}
			if len(keys) != len(tc.wantAtEnd) {
				t.Fatalf("at catch-up: %q, want %q", keys, tc.wantAtEnd)
			}
			for i := range keys {
				if keys[i] != tc.wantAtEnd[i] {
					t.Fatalf("at catch-up: %q, want %q", keys, tc.wantAtEnd)
				}
			}
			if got := j.read(rec("c", "x"), bad); len(got) != 1 {
				t.Errorf("junk after catch-up: %d dead-lettered, want 1", len(got))
			}
		})
	}
}

// Junk on the workers topic goes to the dead-letter topic once, with its
// origin, and is deleted from the topic with a tombstone; a replica started
// later does not dead-letter it again; junk written while a replica runs is
// dead-lettered at once.
func TestJunkWorkerRecordDeadLettered(t *testing.T) {
	e := newEnv(t, 1)
	cl := e.prod.Client()
	if err := cl.ProduceSync(e.ctx, &kgo.Record{Topic: e.names.Workers(), Key: []byte("ghost"), Value: []byte("junk")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := e.config("s1")
	cfg.Listen = "127.0.0.1:0"
	s1, _ := e.start(cfg)
	eventually(t, "the junk worker record dead-lettered", func() bool {
		return metricText(t, s1, "pullsched_scheduler_dead_letters_total 1")
	})
	dl := readTopic(t, e, e.names.DLQ(), 1)
	if got := header(dl[0], consumer.HeaderTopic); got != e.names.Workers() || string(dl[0].Value) != "junk" {
		t.Fatalf("dead letter from %q with value %q, want the workers topic's junk", got, dl[0].Value)
	}
	ws := readTopic(t, e, e.names.Workers(), 2)
	if string(ws[1].Key) != "ghost" || ws[1].Value != nil {
		t.Fatalf("second workers record: key %q value %q, want ghost's tombstone", ws[1].Key, ws[1].Value)
	}

	cfg2 := e.config("s2")
	cfg2.Listen = "127.0.0.1:0"
	s2, _ := e.start(cfg2)
	if err := cl.ProduceSync(e.ctx, &kgo.Record{Topic: e.names.Workers(), Key: []byte("ghost2"), Value: []byte("junk2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Scheduler{s1, s2} {
		eventually(t, "junk written while running dead-lettered", func() bool {
			return metricText(t, s, "pullsched_scheduler_dead_letters_total "+map[*Scheduler]string{s1: "2", s2: "1"}[s])
		})
	}
}

// readTopic reads the first n records of topic's partition 0.
func readTopic(t *testing.T, e *env, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: read %d records, want %d", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out[:n]
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
