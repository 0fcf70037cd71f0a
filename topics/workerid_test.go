package topics

import (
	"strings"
	"testing"
)

func TestWorkerIDFromURL(t *testing.T) {
	for _, c := range []struct{ url, id, hostport, err string }{
		{"http://127.0.0.1:8081", "127.0.0.1-8081", "127.0.0.1:8081", ""},
		{"http://Host:8081", "host-8081", "host:8081", ""}, // the admin API kept the case, the sidecar did not
		{"https://worker-3.example.com/ol", "worker-3.example.com-443", "worker-3.example.com:443", ""},
		{"http://127.0.0.1", "127.0.0.1-80", "127.0.0.1:80", ""}, // the admin API wanted a port, the sidecar defaulted it
		{"http://[::1]:9000", "--1-9000", "[::1]:9000", ""},
		{"ftp://127.0.0.1:21", "", "", "http"},
		{"127.0.0.1:80", "", "", ""},
		{"http://a b:80", "", "", ""},
		{"http://h:1?x=1", "", "", "query"},
		{"http://u@h:1", "", "", "user"},
	} {
		id, err := WorkerIDFromURL(c.url)
		hp, herr := WorkerHostPort(c.url)
		if c.id != "" {
			if err != nil || id != c.id || herr != nil || hp != c.hostport {
				t.Errorf("%q: id %q (%v), host:port %q (%v); want %q, %q", c.url, id, err, hp, herr, c.id, c.hostport)
			}
			continue
		}
		if err == nil || herr == nil {
			t.Errorf("%q: id %q, host:port %q; want errors", c.url, id, hp)
		} else if !strings.Contains(err.Error(), c.url) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %q, want it to name the URL and %q", c.url, err, c.err)
		}
	}
}

func TestSanitizeID(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "unknown",
		"host-1.example":         "host-1.example",
		"my host/α":              "my-host---",
		"..":                     "unknown",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		if got := SanitizeID(in); got != want || !ValidID(got) {
			t.Errorf("SanitizeID(%q) = %q (valid %v), want %q", in, got, ValidID(got), want)
		}
	}
}
