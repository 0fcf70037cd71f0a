package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pullsched/pullsched/workersim"
)

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// repeatedKeys returns the top-level keys a JSON object line carries more
// than once. Log pipelines (Loki, Elasticsearch, jq) keep one of them or
// reject the line.
func repeatedKeys(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %q", line)
	}
	seen := map[string]bool{}
	var dup []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if seen[k] {
			dup = append(dup, k)
		}
		seen[k] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return dup, nil
}

func TestRepeatedKeys(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string
	}{
		{`{"part":"scheduler","msg":"x"}`, ""},
		{`{"part":"scheduler","part":"kafka"}`, "part"},
		{`{"a":{"b":1,"b":2},"c":[1,{"d":1}]}`, ""}, // nested objects are not lines' keys
	} {
		got, err := repeatedKeys(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("repeatedKeys(%s) = %v, want %q", tc.line, got, tc.want)
		}
	}
}

// Every JSON log line of a whole cluster — scheduler, invoker sidecars,
// controller, workersims, the embedded broker and their Kafka clients, at
// debug level — has each key once.
func TestLogLinesHaveUniqueKeys(t *testing.T) {
	var out syncBuffer
	log := zerolog.New(&out).Level(zerolog.DebugLevel).With().Timestamp().Logger()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Workers: 2, Sim: workersim.Config{TimeScale: 0.01}, ControllerListen: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		resp, err := http.Post(c.ControllerURL()+fmt.Sprintf("/run/linpack-%d", i%2), "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	}
	resp, err := http.Post(c.ControllerURL()+"/run/bad$name", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	lines, parts := 0, map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		dup, err := repeatedKeys(sc.Text())
		if err != nil {
			t.Fatal(err)
		}
		if len(dup) > 0 {
			t.Errorf("keys %v repeated in %s", dup, sc.Text())
		}
		var l struct{ Part, Subsystem string }
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			parts[l.Part+"/"+l.Subsystem] = true
		}
	}
	for _, want := range []string{"scheduler/", "invoker/", "controller/", "workersim/", "scheduler/kafka", "invoker/kafka", "controller/kafka"} {
		if !parts[want] {
			t.Errorf("no log line of part/subsystem %q; saw %v", want, parts)
		}
	}
	t.Logf("%d lines checked", lines)
}
