package invokerbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pullsched/pullsched/httpserve"
	"github.com/pullsched/pullsched/topics"
)

// maxNoticeBytes bounds an eviction notice's body.
const maxNoticeBytes = 4 << 10

// notice is the body OpenLambda, as patched for Hiku, posts when it
// destroys a sandbox.
type notice struct {
	Host *string `json:"host"`
}

// parseNotice checks a notice's body and returns its lower-case host:port.
func parseNotice(body []byte) (string, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return "", errors.New(`empty body: want {"host": "<host>:<port>"}`)
	}
	var n notice
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&n); err != nil {
		return "", errors.New(`body is not a JSON object {"host": "<host>:<port>"}: ` + err.Error())
	}
	if dec.More() {
		return "", errors.New("body holds more than one JSON value")
	}
	if n.Host == nil {
		return "", errors.New(`missing "host"`)
	}
	h, p, err := net.SplitHostPort(*n.Host)
	if err != nil || h == "" {
		return "", errors.New(`"host" ` + strconv.Quote(*n.Host) + " is not <host>:<port>")
	}
	if port, err := strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
		return "", errors.New(`"host" ` + strconv.Quote(*n.Host) + " has no valid port")
	}
	return strings.ToLower(net.JoinHostPort(h, p)), nil
}

// serveDestroySandbox handles POST /destroySandbox/<fn>: an eviction notice
// becomes an Eviction event of the worker the notice's host names.
func (b *Bridge) serveDestroySandbox(w http.ResponseWriter, r *http.Request) error {
	fn := r.PathValue("fn")
	if err := topics.CheckFunction(fn); err != nil {
		b.met.notices.WithLabelValues("malformed").Inc()
		return &httpserve.Error{Status: http.StatusBadRequest, Msg: "bad function name in /destroySandbox/<fn>", Err: err}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNoticeBytes))
	if err != nil {
		b.met.notices.WithLabelValues("malformed").Inc()
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err // 413 from the adapter
		}
		return &httpserve.Error{Status: http.StatusBadRequest, Msg: "reading the notice", Err: err}
	}
	host, err := parseNotice(body)
	if err != nil {
		b.met.notices.WithLabelValues("malformed").Inc()
		return &httpserve.Error{Status: http.StatusBadRequest, Msg: "malformed eviction notice", Err: err}
	}
	rn := b.runnerFor(host)
	if rn == nil {
		b.met.notices.WithLabelValues("unknown_host").Inc()
		return httpserve.Errorf(http.StatusNotFound, "no worker served by this bridge has host %s", host)
	}
	ev := &topics.Eviction{Function: fn, Worker: rn.w.id, At: time.Now()}
	if err := b.prod.Publish(r.Context(), b.names.WorkerEvents(), ev); err != nil {
		b.met.notices.WithLabelValues("publish_failed").Inc()
		b.log.Warn().Err(err).Str("fn", fn).Str("worker", rn.w.id).Msg("eviction not published")
		return &httpserve.Error{Status: http.StatusServiceUnavailable, Msg: "eviction not published", Err: err}
	}
	b.met.notices.WithLabelValues("accepted").Inc()
	b.met.evictions.WithLabelValues(rn.w.id).Inc()
	b.log.Debug().Str("fn", fn).Str("worker", rn.w.id).Msg("eviction published")
	httpserve.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "worker": rn.w.id, "fn": fn})
	return nil
}
