package workersim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// notice is one eviction notice to send.
type notice struct {
	fn   string
	host string
}

// notifier posts eviction notices from a bounded queue on one goroutine, so
// that they keep their order and never block the simulator.
type notifier struct {
	base   string
	client *http.Client
	log    zerolog.Logger
	queue  chan notice
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent, failed, dropped atomic.Int64
}

func newNotifier(cfg Config, log zerolog.Logger) *notifier {
	client := cfg.NotifyClient
	if client == nil {
		client = &http.Client{Timeout: cfg.NotifyTimeout}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{
		base:   strings.TrimRight(cfg.NotifyURL, "/"),
		client: client,
		log:    log,
		queue:  make(chan notice, cfg.NotifyQueue),
		ctx:    ctx,
		cancel: cancel,
	}
	n.wg.Add(1)
	go n.run(cfg)
	return n
}

// enqueue queues a notice without blocking; a full queue drops it.
func (n *notifier) enqueue(fn, host string) {
	select {
	case n.queue <- notice{fn: fn, host: host}:
	default:
		n.dropped.Add(1)
		n.log.Warn().Str("function", fn).Msg("eviction notice queue full, notice dropped")
	}
}

func (n *notifier) run(cfg Config) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case nt := <-n.queue:
			ctx, cancel := context.WithTimeout(n.ctx, cfg.NotifyTimeout)
			err := n.send(ctx, nt)
			cancel()
			if err != nil {
				n.failed.Add(1)
				n.log.Warn().Err(err).Str("function", nt.fn).Msg("eviction notice failed")
				continue
			}
			n.sent.Add(1)
		}
	}
}

// send posts one notice: POST <base>/destroySandbox/<fn> {"host": ...}.
func (n *notifier) send(ctx context.Context, nt notice) error {
	body, err := json.Marshal(struct {
		Host string `json:"host"`
	}{nt.host})
	if err != nil {
		return fmt.Errorf("encode notice: %w", err)
	}
	u := n.base + "/destroySandbox/" + url.PathEscape(nt.fn)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notice request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("post notice: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post notice: %s answered %s", u, resp.Status)
	}
	return nil
}

// close stops the sender and waits for it; queued notices are dropped and
// counted.
func (n *notifier) close() {
	n.cancel()
	n.wg.Wait()
	for {
		select {
		case <-n.queue:
			n.dropped.Add(1)
		default:
			return
		}
	}
}
