package topics

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// WorkerHostPort returns the lower-case host:port of a worker's http(s)
// base URL, with the scheme's default port (80, 443) when it names none.
// A URL with a user, query or fragment is refused: it cannot be a base URL
// that /run/<fn> is appended to.
func WorkerHostPort(raw string) (string, error) {
	host, port, err := workerHostPort(raw)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// WorkerIDFromURL returns the id of the worker at a base URL, the one rule
// the admin API, the sidecars and the schedulers share: the lower-case
// host and port (the scheme's default when none is named) joined by '-',
// every ':' as '-' (http://Host:8081 → host-8081, https://h/ol → h-443,
// http://[::1]:9000 → --1-9000).
func WorkerIDFromURL(raw string) (string, error) {
	host, port, err := workerHostPort(raw)
	if err != nil {
		return "", err
	}
	id := strings.ReplaceAll(host+":"+port, ":", "-")
	if err := CheckID("worker", id); err != nil {
		return "", fmt.Errorf("worker URL %q: %w", raw, err)
	}
	return id, nil
}

func workerHostPort(raw string) (host, port string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("worker URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", "", fmt.Errorf("worker URL %q: want http://host[:port] or https://host[:port]", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("worker URL %q: want no user, query or fragment", raw)
	}
	host, port = strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", "", fmt.Errorf("worker URL %q: no host", raw)
	}
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return host, port, nil
}

// SanitizeID maps s onto the id alphabet (see ValidID): every character
// other than a letter, digit, '_', '.' or '-' becomes '-', and the result
// is cut to 128 bytes; "" becomes "unknown". Parts use it to derive their
// default ids from the host name.
func SanitizeID(s string) string {
	if s == "" {
		return "unknown"
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	if s := string(b); s == "." || s == ".." {
		return "unknown"
	}
	return string(b)
}
