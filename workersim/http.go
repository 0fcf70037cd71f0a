package workersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Handler returns the worker's HTTP API: /run/<fn>, /status and /stats.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/run/", s.serveRun)
	mux.HandleFunc("/status", s.serveStatus)
	mux.HandleFunc("/stats", s.serveStats)
	return mux
}

// runAnswer is the JSON body of a successful /run.
type runAnswer struct {
	Function   string          `json:"function"`
	Worker     string          `json:"worker"`
	Cold       bool            `json:"cold"`
	DurationMS float64         `json:"duration_ms"`
	Echo       json.RawMessage `json:"echo"`
}

// urlComponents splits a path the way OpenLambda's worker does: trim one
// leading and one trailing "/", split on "/".
func urlComponents(path string) []string {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	return strings.Split(path, "/")
}

func (s *Sim) serveRun(w http.ResponseWriter, r *http.Request) {
	name := s.Name()
	w.Header().Set("X-Worker", name)
	parts := urlComponents(r.URL.Path)
	if len(parts) != 2 {
		s.countBad()
		httpText(w, http.StatusInternalServerError, "expected invocation format: /run/<lambda-name>")
		return
	}
	fn := parts[1]
	if fn == "" {
		s.countBad()
		httpText(w, http.StatusInternalServerError, "lambda name is empty; expected invocation format: /run/<lambda-name>")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.countBad()
		w.Header().Set("Allow", "GET, POST")
		httpText(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.countBad()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
			return
		}
		httpText(w, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	echo := json.RawMessage("null")
	if len(body) > 0 || r.Method == http.MethodPost {
		if !json.Valid(body) {
			s.countBad()
			httpText(w, http.StatusBadRequest, fmt.Sprintf("bad POST data: %q", body))
			return
		}
		echo = body
	}

	j := s.submit(fn)
	select {
	case <-j.done:
	case <-r.Context().Done():
		s.abandon(j)
		<-j.done
		if j.err != nil {
			return // nobody listens any more
		}
	}
	switch {
	case errors.Is(j.err, ErrQueueFull):
		httpText(w, http.StatusTooManyRequests, "lambda function queue is full")
		return
	case j.err != nil:
		httpText(w, http.StatusServiceUnavailable, j.err.Error())
		return
	}
	out, err := json.Marshal(runAnswer{
		Function:   fn,
		Worker:     name,
		Cold:       j.cold,
		DurationMS: float64(j.duration.Microseconds()) / 1000,
		Echo:       echo,
	})
	if err != nil { // cannot happen: echo is valid JSON
		httpText(w, http.StatusInternalServerError, "encoding answer: "+err.Error())
		return
	}
	if j.cold {
		w.Header().Set("X-Cold-Start", "1")
	} else {
		w.Header().Set("X-Cold-Start", "0")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (s *Sim) serveStatus(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		httpText(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (s *Sim) serveStats(w http.ResponseWriter, _ *http.Request) {
	out, err := json.MarshalIndent(s.Stats(), "", "\t")
	if err != nil {
		httpText(w, http.StatusInternalServerError, "encoding stats: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (s *Sim) countBad() {
	s.mu.Lock()
	s.counters.badRequests++
	s.mu.Unlock()
}

func httpText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}
