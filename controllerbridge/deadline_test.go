package controllerbridge

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A blocking request nothing answers is answered 504 at its deadline, not
// ResultMargin later (issue 13: clients got 504s up to 5s past their
// ?timeout=); the 504 names where a later result can be fetched.
func TestTimeoutAnsweredAtDeadline(t *testing.T) {
	h := start(t, func(c *Config) { c.ResultMargin = 5 * time.Second })
	t0 := time.Now()
	resp, body := call(t, "POST", h.base+"/run/f?timeout=300ms", "", "{}")
	took := time.Since(t0)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d %s, want 504", resp.StatusCode, body)
	}
	if took >= 5*time.Second {
		t.Fatalf("answered %v after the request, past its 300ms deadline by the result margin", took)
	}
	if id := resp.Header.Get(HeaderActivationID); id == "" || !strings.Contains(string(body), "/activations/"+id) {
		t.Fatalf("504 %s (activation %q) does not say where a later result is kept", body, id)
	}
}
