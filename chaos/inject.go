package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pullsched/pullsched/consumer"
	"github.com/pullsched/pullsched/producer"
	"github.com/pullsched/pullsched/topics"
)

// headerChaos marks the records the suite writes itself.
const headerChaos = "pullsched-chaos"

// kafka is the suite's own client: it writes records straight into the
// topics and follows the workers topic.
type kafka struct {
	seeds []string
	cl    *kgo.Client
	adm   *kadm.Client
	names topics.Names

	mu     sync.Mutex
	latest map[string]*topics.Worker // last record of each worker, not ours
	skew   map[string]time.Duration  // worker → shift of re-written copies
	tail   *kgo.Client
}

func newKafka(brokers []string, names topics.Names) (*kafka, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ProducerBatchMaxBytes(topics.MaxMessageBytes),
		kgo.ProducerLinger(0),
		kgo.RecordRetries(3),
		kgo.RecordDeliveryTimeout(20*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	return &kafka{seeds: brokers, cl: cl, adm: kadm.NewClient(cl), names: names,
		latest: map[string]*topics.Worker{}, skew: map[string]time.Duration{}}, nil
}

func (k *kafka) close() {
	if k.tail != nil {
		k.tail.Close()
	}
	k.cl.Close()
}

// partitions returns the partition count of topic.
func (k *kafka) partitions(ctx context.Context, topic string) (int32, error) {
	td, err := k.adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	t, ok := td[topic]
	if !ok || t.Err != nil {
		return 0, fmt.Errorf("topic %s: %v", topic, t.Err)
	}
	return int32(len(t.Partitions)), nil
}

// version describes the broker (Kafka version guessed from API versions).
func (k *kafka) version(ctx context.Context) string {
	vs, err := k.adm.ApiVersions(ctx)
	if err != nil {
		return ""
	}
	for _, v := range vs.Sorted() {
		if v.Err == nil {
			return "Kafka " + v.VersionGuess()
		}
	}
	return ""
}

// junk is one malformed record value, with a name for notes.
type junk struct {
	name  string
	value []byte
}

// malformed returns the malformed values written to a topic whose
// records are events of kind.
func malformed(kind topics.Kind) []junk {
	return []junk{
		{"text", []byte("this is not JSON at all")},
		{"binary", []byte{0x00, 0xff, 0xfe, 0x01, 0x7f, 0x80, 0x00}},
		{"empty-object", []byte(`{}`)},
		{"array", []byte(`[1,2,3]`)},
		{"unknown-version", []byte(`{"v":99,"type":"` + string(kind) + `"}`)},
		{"unknown-type", []byte(`{"v":1,"type":"no-such-event"}`)},
		{"missing-fields", []byte(`{"v":1,"type":"` + string(kind) + `"}`)},
		{"truncated", []byte(`{"v":1,"type":"` + string(kind) + `","id":"`)},
	}
}

// oversized returns a value that makes a record with key of exactly
// topics.MaxMessageBytes - 16 bytes on the wire, valid JSON but no event.
func oversized(kind topics.Kind, key []byte) []byte {
	head := []byte(`{"v":1,"type":"` + string(kind) + `","pad":"`)
	tail := []byte(`"}`)
	overhead := producer.BatchBytes(&kgo.Record{Key: key, Headers: []kgo.RecordHeader{{Key: headerChaos, Value: []byte("oversized")}}})
	n := topics.MaxMessageBytes - 16 - overhead - len(head) - len(tail)
	v := make([]byte, 0, len(head)+n+len(tail))
	v = append(v, head...)
	for i := 0; i < n; i++ {
		v = append(v, 'a'+byte(i%26))
	}
	return append(v, tail...)
}

// target is a consumed topic and the kind of event it carries.
type target struct {
	topic string
	kind  topics.Kind
}

// recordID names one record.
type recordID struct {
	topic     string
	partition int32
	offset    int64
}

// inject writes, to every partition of every target, what values returns
// for its kind. It returns the records the broker took and a note per
// topic that refused some.
func (k *kafka) inject(ctx context.Context, targets []target, what string, values func(topics.Kind, []byte) [][]byte) ([]recordID, []string) {
	var recs []*kgo.Record
	var notes []string
	for _, t := range targets {
		np, err := k.partitions(ctx, t.topic)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", t.topic, err))
			continue
		}
		for p := int32(0); p < np; p++ {
			key := []byte(fmt.Sprintf("chaos-%s-%d", what, p))
			for i, v := range values(t.kind, key) {
				recs = append(recs, &kgo.Record{Topic: t.topic, Partition: p,
					Key:     []byte(fmt.Sprintf("%s-%d", key, i)),
					Value:   v,
					Headers: []kgo.RecordHeader{{Key: headerChaos, Value: []byte(what)}}})
			}
		}
	}
	var took []recordID
	refused := map[string]error{}
	for _, r := range k.cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			refused[r.Record.Topic] = r.Err
			continue
		}
		took = append(took, recordID{r.Record.Topic, r.Record.Partition, r.Record.Offset})
	}
	for t, err := range refused {
		notes = append(notes, fmt.Sprintf("%s refused %s records: %v", t, what, err))
	}
	return took, notes
}

// deadLettered reads topic (the dlq) from the offsets in from to its end
// and returns the records its dead letters name (the consumer's topic,
// partition and offset headers; a reference keeps no other header).
func (k *kafka) deadLettered(ctx context.Context, topic string, from kadm.ListedOffsets) (map[recordID]bool, error) {
	end, err := k.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	start := map[string]map[int32]kgo.Offset{topic: {}}
	left := map[int32]int64{}
	end.Each(func(o kadm.ListedOffset) {
		at := int64(0)
		if f, ok := from.Lookup(topic, o.Partition); ok {
			at = f.Offset
		}
		if o.Offset > at {
			start[topic][o.Partition] = kgo.NewOffset().At(at)
			left[o.Partition] = o.Offset
		}
	})
	out := map[recordID]bool{}
	if len(left) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.seeds...), kgo.ConsumePartitions(start), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("reading %s: %w", topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= left[r.Partition] {
				delete(left, r.Partition)
			}
			var id recordID
			for _, h := range r.Headers {
				switch h.Key {
				case consumer.HeaderTopic:
					id.topic = string(h.Value)
				case consumer.HeaderPartition:
					p, _ := strconv.ParseInt(string(h.Value), 10, 32)
					id.partition = int32(p)
				case consumer.HeaderOffset:
					id.offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
				}
			}
			if id.topic != "" {
				out[id] = true
			}
		})
	}
	return out, nil
}

// produceWorker writes w onto the workers topic, its Kafka timestamp at
// stamp, marked as the suite's.
func (k *kafka) produceWorker(ctx context.Context, w *topics.Worker, stamp time.Time, mark string) error {
	v, err := topics.Encode(w)
	if err != nil {
		return err
	}
	r := &kgo.Record{Topic: k.names.Workers(), Partition: 0, Key: []byte(w.ID), Value: v, Timestamp: stamp,
		Headers: []kgo.RecordHeader{{Key: headerChaos, Value: []byte(mark)}}}
	return k.cl.ProduceSync(ctx, r).FirstErr()
}

// follow tails the workers topic until ctx ends: it keeps each worker's
// last record not written by the suite, and re-writes a copy shifted by
// skew[worker] of every such record of a worker being skewed.
func (k *kafka) follow(ctx context.Context, brokers []string) error {
	tail, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(k.names.Workers()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return err
	}
	k.tail = tail
	go func() {
		for {
			fs := tail.PollFetches(ctx)
			if ctx.Err() != nil || errors.Is(fs.Err0(), kgo.ErrClientClosed) {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == headerChaos {
						return
					}
				}
				w, err := topics.DecodeWorker(r.Value)
				if err != nil {
					return
				}
				k.mu.Lock()
				k.latest[w.ID] = w
				shift, skewed := k.skew[w.ID]
				k.mu.Unlock()
				if skewed {
					c := *w
					c.At = w.At.Add(shift)
					_ = k.produceWorker(ctx, &c, r.Timestamp.Add(shift), "skew")
				}
			})
		}
	}()
	return nil
}

// lastRecord returns the last record of worker seen on the workers topic.
func (k *kafka) lastRecord(worker string) (*topics.Worker, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.latest[worker]
	if !ok {
		return nil, false
	}
	c := *w
	return &c, true
}

// setSkew starts (shift != 0) or stops re-writing worker's records shifted.
func (k *kafka) setSkew(worker string, shift time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if shift == 0 {
		delete(k.skew, worker)
	} else {
		k.skew[worker] = shift
	}
}
