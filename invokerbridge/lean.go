package invokerbridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// The lean call path: a keep-alive HTTP/1.1 client of the standard
// library's pieces only — (*http.Request).Write and http.ReadResponse on
// pooled connections — run on the calling goroutine. net/http's client
// hands every call between three goroutines (the caller, the
// connection's writeLoop and its readLoop), validates the header map and
// makes a deadline context per call; on the chain benchmark that machinery,
// not its syscalls, was a fifth of the invoker sidecar's CPU (issue 12).
//
// It serves only plain http:// workers with tracing off and the default
// transport (New decides; call falls back to the client otherwise). What
// net/http's background read gives for free — noticing that the worker
// closed an idle connection (a restarted worker) — a non-blocking peek
// does before each reuse, so that a POST is never written to a
// connection the worker already closed (it is not retried: it may have
// run).

// leanPool holds the idle connections to one worker.
type leanPool struct {
	base      *url.URL // the worker's URL: scheme http, no user, query or fragment
	addr      string   // host:port to dial
	dialer    net.Dialer
	maxIdle   int
	idleLimit time.Duration // idle connections older than this are closed, not reused

	mu   sync.Mutex
	idle []*leanConn // most recently used last
}

// leanConn is one keep-alive connection with its buffers.
type leanConn struct {
	c      net.Conn
	raw    syscall.RawConn // nil: its liveness cannot be peeked
	br     *bufio.Reader
	bw     *bufio.Writer
	last   time.Time // when it went idle
	peekFn func(fd uintptr) bool
	alive  bool // result of peekFn
}

// newLeanPool returns the pool for a worker at base, or nil when the lean
// path cannot serve it (then the http.Client does).
func newLeanPool(base string, maxIdle int) *leanPool {
	if !leanSupported {
		return nil
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		u.RawPath != "" || u.Opaque != "" || u.Host == "" || !safePath(u.Path) {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &leanPool{
		base:      u,
		addr:      addr,
		dialer:    net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:   max(maxIdle, 1),
		idleLimit: 90 * time.Second,
	}
}

// safePath reports whether s needs no escaping in a request line, so that
// the request the lean path writes is byte for byte the one net/http would.
func safePath(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' ||
			c == '/' || c == '~') {
			return false
		}
	}
	return true
}

// get returns an idle connection that is still open, or dials one.
func (p *leanPool) get(ctx context.Context, deadline time.Time) (*leanConn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		lc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		if now.Sub(lc.last) < p.idleLimit && lc.open() {
			return lc, nil
		}
		_ = lc.c.Close()
	}
	d := p.dialer
	d.Deadline = deadline
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	lc := &leanConn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			lc.raw = raw
			lc.peekFn = lc.peek
		}
	}
	return lc, nil
}

// put returns lc to the idle connections, or closes it when enough are
// idle.
func (p *leanPool) put(lc *leanConn) {
	lc.last = time.Now()
	p.mu.Lock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, lc)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = lc.c.Close()
}

// close closes the idle connections.
func (p *leanPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, lc := range idle {
		_ = lc.c.Close()
	}
}

// open reports whether an idle connection may be reused: nothing is
// buffered from it and the worker has neither closed it nor sent anything.
func (lc *leanConn) open() bool {
	if lc.br.Buffered() > 0 || lc.raw == nil {
		return false
	}
	lc.alive = false
	if err := lc.raw.Read(lc.peekFn); err != nil {
		return false
	}
	return lc.alive
}

// leanCall is one call's request and answer.
type leanCall struct {
	status      int
	contentType string
	cold        string // X-Cold-Start
	body        []byte
	tooLarge    bool // the answer exceeded the limit; body is nil
}

// jsonHeader is the header of every call; (*http.Request).Write only reads it.
var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// errLeanCancelled is the cause of a call whose context ended.
var errLeanCancelled = errors.New("call cancelled")

// do POSTs payload to <base>/run/<fn> before deadline, or until ctx ends,
// and reads the answer, at most limit bytes of body. Errors are
// *url.Error, as net/http's client returns them.
func (p *leanPool) do(ctx context.Context, deadline time.Time, fn string, payload []byte, limit int64) (leanCall, error) {
	u := *p.base
	u.Path = p.base.Path + "/run/" + fn
	fail := func(err error) (leanCall, error) {
		return leanCall{}, &url.Error{Op: "Post", URL: u.String(), Err: err}
	}
	lc, err := p.get(ctx, deadline)
	if err != nil {
		return fail(err)
	}
	if err := lc.c.SetDeadline(deadline); err != nil {
		_ = lc.c.Close()
		return fail(err)
	}
	// Cancellation (the drain timeout) ends the call at once: a deadline in
	// the past fails the read or write in progress.
	stop := context.AfterFunc(ctx, func() { _ = lc.c.SetDeadline(time.Unix(1, 0)) })
	lcall, reuse, err := lc.roundTrip(&u, payload, limit)
	if !stop() || !reuse || err != nil {
		_ = lc.c.Close()
	} else {
		p.put(lc)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errLeanCancelled
		}
		return fail(err)
	}
	return lcall, nil
}

// roundTrip writes one request and reads its answer; reuse says whether
// the connection may carry another.
func (lc *leanConn) roundTrip(u *url.URL, payload []byte, limit int64) (out leanCall, reuse bool, err error) {
	req := http.Request{
		Method:     http.MethodPost,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     jsonHeader,
		// A bytes.Reader in a NopCloser is a body of known length written
		// with the header in one write (Request.Write looks through it).
		Body:          io.NopCloser(bytes.NewReader(payload)),
		ContentLength: int64(len(payload)),
		Host:          u.Host,
	}
	if err := req.Write(lc.bw); err != nil {
		return out, false, err
	}
	if err := lc.bw.Flush(); err != nil { // Write does not flush a writer it was given
		return out, false, err
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(lc.br, &req)
		if err != nil {
			return out, false, err
		}
		// 1xx informational answers (but 101) precede the real one.
		if resp.StatusCode < 100 || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	out.status = resp.StatusCode
	out.contentType = resp.Header.Get("Content-Type")
	out.cold = resp.Header.Get("X-Cold-Start")
	out.body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return out, false, err
	}
	if int64(len(out.body)) > limit {
		// Not drained: the connection is closed instead.
		out.body, out.tooLarge = nil, true
		return out, false, nil
	}
	// The body was read to its end (fewer than limit+1 bytes).
	_ = resp.Body.Close()
	return out, !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols, nil
}
