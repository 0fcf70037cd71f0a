// Package pipeline is how an existing pipeline uses pullsched through Kafka
// alone, written with sarama as any outside client would be: it produces
// arrivals keyed by function (placed with Kafka's murmur2 partitioning, so
// they co-partition with worker-events) with reply set to its own id, and
// reads the answers from its own results topic, results.<id>.
//
// docs/PIPELINE.md shows this file verbatim; a test runs it against a
// pullsched cluster.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/pullsched/pullsched/topics"
)

// Config says where pullsched is and who this pipeline is.
type Config struct {
	// Brokers are Kafka seed brokers. Required.
	Brokers []string
	// Prefix is pullsched's topic prefix. Default "pullsched.".
	Prefix string
	// ID names this pipeline; its answers come on <Prefix>results.<ID>.
	// Required: letters, digits, '.', '_' or '-'.
	ID string
	// Timeout is how long pullsched may take to answer an arrival; after
	// it the answer is a 504 result. Default 60s.
	Timeout time.Duration
}

// Result is pullsched's answer to one arrival (see docs/PIPELINE.md).
type Result struct {
	ID         string          `json:"id"`
	Function   string          `json:"fn"`
	Status     int             `json:"status"`        // HTTP status: the worker's, or 429/502/503/504 from pullsched
	Body       json.RawMessage `json:"body"`          // the function's answer: JSON as it was, else a string
	BodyEnc    string          `json:"body_encoding"` // "" (JSON), "text" or "base64"
	Worker     string          `json:"worker"`
	Start      string          `json:"start"` // "cold", "warm" or ""
	DurationMs float64         `json:"duration_ms"`
	Reason     string          `json:"reason"` // overloaded, no_workers, timeout, worker_failed
	Error      string          `json:"error"`
}

// arrival is the event pullsched's schedulers consume.
type arrival struct {
	V        int             `json:"v"`
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Function string          `json:"fn"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	Reply    string          `json:"reply"`
	Deadline time.Time       `json:"deadline"`
}

// murmur2 places keyed records as Kafka's Java client does; sarama's own
// hash partitioner (FNV-1a) would put a function's arrivals on another
// partition than its worker-events.
type murmur2 struct{}

func (murmur2) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	key, err := m.Key.Encode()
	if err != nil {
		return 0, err
	}
	return topics.PartitionFor(key, n), nil
}

func (murmur2) RequiresConsistency() bool { return true }

// Pipeline submits arrivals and hands out their results.
type Pipeline struct {
	cfg      Config
	client   sarama.Client
	producer sarama.SyncProducer
	consumer sarama.Consumer
	readers  []sarama.PartitionConsumer
	wg       sync.WaitGroup

	mu      sync.Mutex
	waiting map[string]chan Result // by activation id
}

// New creates the pipeline's results topic if needed and starts reading it
// from its end, so every answer to what it submits from now on arrives.
func New(ctx context.Context, cfg Config) (*Pipeline, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = topics.DefaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if len(cfg.Brokers) == 0 || !topics.ValidID(cfg.ID) {
		return nil, errors.New("pipeline: Brokers and a valid ID are required")
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = func(string) sarama.Partitioner { return murmur2{} }
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	p := &Pipeline{cfg: cfg, client: client, waiting: map[string]chan Result{}}
	if err := p.start(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Pipeline) start(ctx context.Context) error {
	admin, err := sarama.NewClusterAdminFromClient(p.client)
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	// The results topic as pullsched would create it: one partition,
	// short retention. (Closing admin would close the shared client.)
	spec := topics.Config{Prefix: p.cfg.Prefix}.ResultsSpec(p.cfg.ID)
	detail := &sarama.TopicDetail{NumPartitions: spec.Partitions, ReplicationFactor: spec.Replication, ConfigEntries: map[string]*string{}}
	for k, v := range spec.Configs {
		detail.ConfigEntries[k] = &v
	}
	err = admin.CreateTopic(spec.Name, detail, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("pipeline: create %s: %w", spec.Name, err)
	}
	if p.producer, err = sarama.NewSyncProducerFromClient(p.client); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if p.consumer, err = sarama.NewConsumerFromClient(p.client); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	var parts []int32
	for len(parts) == 0 { // a new topic's metadata takes a moment
		if err = p.client.RefreshMetadata(spec.Name); err == nil {
			parts, err = p.client.Partitions(spec.Name)
		}
		if len(parts) == 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("pipeline: partitions of %s: %w", spec.Name, errors.Join(err, ctx.Err()))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	for _, part := range parts {
		pc, err := p.consumer.ConsumePartition(spec.Name, part, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("pipeline: read %s/%d: %w", spec.Name, part, err)
		}
		p.readers = append(p.readers, pc)
		p.wg.Add(1)
		go p.read(pc)
	}
	return nil
}

// read hands each result to the slot of its id; results for ids this
// pipeline did not submit, and duplicates, are dropped.
func (p *Pipeline) read(pc sarama.PartitionConsumer) {
	defer p.wg.Done()
	for m := range pc.Messages() {
		var r Result
		if err := json.Unmarshal(m.Value, &r); err != nil {
			continue
		}
		p.mu.Lock()
		if ch, ok := p.waiting[r.ID]; ok {
			select {
			case ch <- r:
			default: // a duplicate: the slot holds the first answer
			}
		}
		p.mu.Unlock()
	}
}

// Submit produces an arrival of function fn with a JSON payload and returns
// its activation id; Await gives its result.
func (p *Pipeline) Submit(ctx context.Context, fn string, payload json.RawMessage) (string, error) {
	if err := topics.CheckFunction(fn); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	a := arrival{V: 1, Type: "arrival", ID: uuid.NewString(), Function: fn, Payload: payload,
		Reply: p.cfg.ID, Deadline: time.Now().Add(p.cfg.Timeout).UTC()}
	value, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("pipeline: %w", err)
	}
	p.mu.Lock()
	p.waiting[a.ID] = make(chan Result, 1)
	p.mu.Unlock()
	msg := &sarama.ProducerMessage{
		Topic: topics.NewNames(p.cfg.Prefix).Arrivals(),
		Key:   sarama.StringEncoder(fn), // key: the function
		Value: sarama.ByteEncoder(value),
	}
	if _, _, err := p.producer.SendMessage(msg); err != nil {
		p.forget(a.ID)
		return "", fmt.Errorf("pipeline: submit %s: %w", fn, err)
	}
	return a.ID, nil
}

// Await returns the result of a submitted activation, or ctx's error.
func (p *Pipeline) Await(ctx context.Context, id string) (Result, error) {
	p.mu.Lock()
	ch, ok := p.waiting[id]
	p.mu.Unlock()
	if !ok {
		return Result{}, fmt.Errorf("pipeline: %s was not submitted or was already awaited", id)
	}
	defer p.forget(id)
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (p *Pipeline) forget(id string) {
	p.mu.Lock()
	delete(p.waiting, id)
	p.mu.Unlock()
}

// Close stops reading results and closes the Kafka connections.
func (p *Pipeline) Close() error {
	var errs []error
	for _, pc := range p.readers {
		pc.AsyncClose() // ends pc.Messages(), and so read
	}
	p.wg.Wait()
	if p.consumer != nil {
		errs = append(errs, p.consumer.Close())
	}
	if p.producer != nil {
		errs = append(errs, p.producer.Close())
	}
	errs = append(errs, p.client.Close())
	return errors.Join(errs...)
}
