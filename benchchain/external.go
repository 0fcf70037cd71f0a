package benchchain

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// External is a target other than the bench's own, started by the user
// (or, with Command, by the bench for each run): any HTTP server that
// answers POST <URL with the function name> with 200, for instance another
// scheduler or proxy in front of the bench's own no-op workers (start the
// workers on fixed addresses with Config.WorkerAddrs and give the proxy
// those). It is offered the same load as the other targets at each rate,
// after the direct run and before the chain.
type External struct {
	// Name labels the target in the report; not "direct" or "chain".
	Name string
	// URL is where function <fn> is called: every "{fn}" in it is replaced
	// by the function's name (http://127.0.0.1:9020/invoke/{fn}?x=1), or,
	// without "{fn}", the name is appended to its path
	// (http://127.0.0.1:9020/run/ calls http://127.0.0.1:9020/run/f-0).
	URL string
	// PID, when set, is the target's process, whose CPU per request is
	// then reported under Name.
	PID int
	// Command, when set, is the target's command line (program and
	// arguments): the bench starts it before each run against the target
	// and stops it after, so that every rate meets a fresh process — a
	// target that keeps state from an earlier rate's overload is measured
	// without it — and reports its CPU; PID is then unused, and the
	// target gets no warm-up beyond the ten answers that show it is up.
	// Its output is discarded.
	Command []string
}

// externalStopWait is how long a started external target has to exit
// after SIGTERM before it is killed.
const externalStopWait = 5 * time.Second

// externalProc is a running External.Command.
type externalProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startExternal starts e.Command and waits until url is answered 200 ten
// times in a row.
func startExternal(ctx context.Context, e External, client *http.Client, url string, timeout time.Duration) (*externalProc, error) {
	cmd := exec.Command(e.Command[0], e.Command[1:]...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchchain: external %s: %w", e.Name, err)
	}
	p := &externalProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	if err := firstAnswers(ctx, client, url, timeout); err != nil {
		p.stop()
		return nil, fmt.Errorf("external %s (%s): %w", e.Name, strings.Join(e.Command, " "), err)
	}
	select {
	case <-p.done:
		return nil, fmt.Errorf("benchchain: external %s exited, yet %s answered: another process serves it", e.Name, url)
	default:
	}
	return p, nil
}

// hostListening reports whether something accepts connections at u's
// host and port.
func hostListening(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	port := pu.Port()
	if port == "" {
		port = "80"
		if pu.Scheme == "https" {
			port = "443"
		}
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(pu.Hostname(), port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

func (p *externalProc) pid() int { return p.cmd.Process.Pid }

// stop ends the process: SIGTERM, then SIGKILL after externalStopWait.
func (p *externalProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(externalStopWait):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// fnPlaceholder is what External.URL names the function with.
const fnPlaceholder = "{fn}"

// validate reports an External that cannot work.
func (e External) validate() error {
	switch e.Name {
	case "", "direct", "chain", "bench", "broker", "scheduler", "controller", "invoker":
		return fmt.Errorf("%w: external target name %q: want a name of its own (not a part's or a built-in target's)", ErrConfig, e.Name)
	}
	if strings.ContainsAny(e.Name, "=, \t") {
		return fmt.Errorf("%w: external target name %q: no '=', ',' or spaces", ErrConfig, e.Name)
	}
	u, err := url.Parse(strings.ReplaceAll(e.URL, fnPlaceholder, "f-0"))
	if err != nil {
		return fmt.Errorf("%w: external %s: URL %q: %v", ErrConfig, e.Name, e.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: external %s: URL %q: want http://host:port/path", ErrConfig, e.Name, e.URL)
	}
	if e.PID < 0 {
		return fmt.Errorf("%w: external %s: negative pid", ErrConfig, e.Name)
	}
	return nil
}

// functionURL is the URL that calls function fn on the target.
func (e External) functionURL(fn string) string {
	if strings.Contains(e.URL, fnPlaceholder) {
		return strings.ReplaceAll(e.URL, fnPlaceholder, fn)
	}
	base, query, hasQuery := strings.Cut(e.URL, "?")
	if hasQuery {
		return base + fn + "?" + query
	}
	return base + fn
}

// ParseExternal reads "name=URL", the form of the --external flag.
func ParseExternal(s string) (External, error) {
	name, u, ok := strings.Cut(s, "=")
	if !ok {
		return External{}, fmt.Errorf("%w: external target %q: want name=URL", ErrConfig, s)
	}
	e := External{Name: strings.TrimSpace(name), URL: strings.TrimSpace(u)}
	return e, e.validate()
}

// ParseNamedCommand reads "name=program arg...", the form of the
// --external-cmd flag: the command line is split at spaces (no quoting).
func ParseNamedCommand(s string) (string, []string, error) {
	name, c, ok := strings.Cut(s, "=")
	args := strings.Fields(c)
	if !ok || len(args) == 0 {
		return "", nil, fmt.Errorf("%w: %q: want name=program [arg...]", ErrConfig, s)
	}
	return strings.TrimSpace(name), args, nil
}

// ParseNamedPID reads "name=pid", the form of the --external-pid flag.
func ParseNamedPID(s string) (string, int, error) {
	name, p, ok := strings.Cut(s, "=")
	pid, err := strconv.Atoi(strings.TrimSpace(p))
	if !ok || err != nil || pid <= 0 {
		return "", 0, fmt.Errorf("%w: %q: want name=pid", ErrConfig, s)
	}
	return strings.TrimSpace(name), pid, nil
}

// functionURLs is the URL of each function f-0 ... f-<n-1> at target t.
func functionURLs(n int, url func(fn string) string) []string {
	urls := make([]string, n)
	for f := range urls {
		urls[f] = url("f-" + strconv.Itoa(f))
	}
	return urls
}
