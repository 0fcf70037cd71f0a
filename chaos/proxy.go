package chaos

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// nonceField is the JSON member of a request body that carries its nonce.
const nonceField = `"chaos":"`

// nonceOf returns the nonce in a request body, "" without one.
func nonceOf(body []byte) string {
	i := bytes.Index(body, []byte(nonceField))
	if i < 0 {
		return ""
	}
	rest := body[i+len(nonceField):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// counter holds executions by nonce, shared by every proxy of a run.
type counter struct {
	mu sync.Mutex
	m  map[string]Execs
}

func newCounter() *counter { return &counter{m: map[string]Execs{}} }

func (c *counter) add(nonce string, attempt, completed int) {
	if nonce == "" {
		return
	}
	c.mu.Lock()
	e := c.m[nonce]
	e.Attempts += attempt
	e.Completed += completed
	c.m[nonce] = e
	c.mu.Unlock()
}

// snapshot copies the counts.
func (c *counter) snapshot() map[string]Execs {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Execs, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// proxy sits between a sidecar and its worker and forwards everything;
// for /run/ calls it counts, by nonce, the calls forwarded and the ones the
// worker answered 200. When the worker cannot be reached the proxy drops
// the connection without an answer, as the dead worker itself would.
type proxy struct {
	upstream string // http://host:port of the workersim
	count    *counter
	client   *http.Client
	ln       net.Listener
	srv      *http.Server
}

func newProxy(upstream string, count *counter) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{upstream: upstream, count: count, ln: ln,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}}}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// addr is where the proxy listens (the worker's address as the system
// sees it).
func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	p.client.CloseIdleConnections()
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	nonce := ""
	if strings.HasPrefix(r.URL.Path, "/run/") {
		nonce = nonceOf(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Header = r.Header.Clone()
	p.count.add(nonce, 1, 0)
	resp, err := p.client.Do(req)
	if err != nil {
		panic(http.ErrAbortHandler) // the client sees a dropped connection
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		p.count.add(nonce, 0, 1)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
