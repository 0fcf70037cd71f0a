package benchchain

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// External is a target the bench does not start: any HTTP server that
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
