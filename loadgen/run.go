package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxBody bounds how much of an answer's body is read.
const maxBody = 1 << 20

// Run drives the workload against cfg.Target and returns what it measured.
// It returns early, with the requests so far and ctx's error, when ctx
// ends; every request and goroutine it started has finished by then.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	maxVUs := 0
	for _, s := range cfg.Stages {
		maxVUs = max(maxVUs, s.VUs)
	}
	r := &runner{cfg: cfg}
	var fns []Function
	var err error
	switch cfg.MixMode {
	case MixShared:
		if r.mix, err = NewMix(cfg.Seed, cfg.Copies); err != nil {
			return nil, err
		}
		fns = r.mix.Functions()
	default:
		if r.vus, err = newVUMixes(cfg.Seed, cfg.Copies, maxVUs, cfg.ThinkMin, cfg.ThinkMax); err != nil {
			return nil, err
		}
		r.ids = vuIDs(cfg.Stages)
		fns = aggregate(r.vus)
	}
	client := cfg.Client
	if client == nil {
		tr := &http.Transport{
			Proxy:               nil, // loopback or a named target; never an environment proxy
			MaxIdleConnsPerHost: maxVUs,
			IdleConnTimeout:     90 * time.Second,
		}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	base := strings.TrimRight(cfg.Target, "/")
	rep := &Report{
		Target: cfg.Target, Seed: cfg.Seed, TimeScale: cfg.TimeScale, Copies: cfg.Copies,
		Stages: cfg.Stages, MixMode: cfg.MixMode, Mix: fns, Started: time.Now(),
	}
	r.client, r.base, r.start = client, base, rep.Started
	r.prog = newProgress(cfg.Progress, cfg.Stages, cfg.TimeScale)
	prog := r.prog
	stageSecs := make([]float64, 0, len(cfg.Stages))
	for i, st := range cfg.Stages {
		if ctx.Err() != nil {
			break
		}
		prog.beginStage(i)
		t0 := time.Now()
		recs := r.stage(ctx, i, st)
		secs := time.Since(t0).Seconds() / cfg.TimeScale
		stageSecs = append(stageSecs, secs)
		rep.Records = append(rep.Records, recs...)
		prog.endStage(i, Summarize(fmt.Sprintf("stage %d", i+1), recs, nil, secs))
	}
	workers := workersOf(rep.Records)
	var total float64
	for i, secs := range stageSecs {
		var recs []Record
		for _, rec := range rep.Records {
			if rec.Stage == i {
				recs = append(recs, rec)
			}
		}
		s := Summarize(fmt.Sprintf("stage %d", i+1), recs, workers, secs)
		s.VUs = cfg.Stages[i].VUs
		rep.PerStage = append(rep.PerStage, s)
		total += secs
		rep.Overall.VUs = max(rep.Overall.VUs, s.VUs)
	}
	vus := rep.Overall.VUs
	rep.Overall = Summarize("overall", rep.Records, workers, total)
	rep.Overall.VUs = vus
	rep.CDF = CDF(rep.Latencies(), 200)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("loadgen: run stopped: %w", err)
	}
	return rep, nil
}

func workersOf(recs []Record) []string {
	m := map[string]int{}
	for _, r := range recs {
		if r.OK() && r.Worker != "" {
			m[r.Worker]++
		}
	}
	return sortedKeys(m)
}

// runner holds what the VUs of a run share.
type runner struct {
	cfg Config
	// mix is the mix of every VU in shared mode; nil in per-VU mode.
	mix *Mix
	// vus[id-1] is the mix and stream of the VU with k6 id id, and ids[s]
	// the ids of stage s's VUs, in per-VU mode; nil in shared mode.
	vus    []*vuMix
	ids    [][]int
	client *http.Client
	base   string
	start  time.Time
	prog   *progress
}

// chooser makes one VU's random choices.
type chooser interface {
	// function draws the function of the VU's next request.
	function() *Function
	// think draws the think time after an answer, in model time.
	think() time.Duration
}

// sharedChooser is a VU's chooser in shared mode: its own PCG stream,
// seeded from (Seed, stage, VU index), from which it draws the function and
// the think time of a request, in that order, before sending it.
type sharedChooser struct {
	rng                *rand.Rand
	mix                *Mix
	thinkMin, thinkMax time.Duration
	next               time.Duration
}

func (c *sharedChooser) function() *Function {
	fn := c.mix.Pick(c.rng.Float64())
	c.next = thinkTime(c.thinkMin, c.thinkMax, c.rng.Float64())
	return fn
}

func (c *sharedChooser) think() time.Duration { return c.next }

// chooser returns the chooser of VU idx of stage stage.
func (r *runner) chooser(stage, idx int) chooser {
	if r.mix == nil {
		return r.vus[r.ids[stage][idx]-1]
	}
	return &sharedChooser{
		rng: rand.New(rand.NewPCG(uint64(r.cfg.Seed), vuSeed(stage, idx))),
		mix: r.mix, thinkMin: r.cfg.ThinkMin, thinkMax: r.cfg.ThinkMax,
	}
}

// stage runs st's VUs until its (scaled) duration has passed and every VU
// has its last answer, and returns their records.
func (r *runner) stage(ctx context.Context, idx int, st Stage) []Record {
	deadline := time.Now().Add(r.cfg.scaled(st.Duration))
	per := make([][]Record, st.VUs)
	var wg sync.WaitGroup
	for v := range st.VUs {
		ch := r.chooser(idx, v)
		wg.Go(func() { per[v] = r.vu(ctx, idx, v, ch, deadline) })
	}
	wg.Wait()
	var out []Record
	for _, recs := range per {
		out = append(out, recs...)
	}
	return out
}

// vuSeed derives the stream of a VU's random source from its stage and
// index.
func vuSeed(stage, vu int) uint64 { return uint64(stage)<<32 | uint64(uint32(vu)) }

// vu is one closed-loop virtual user: draw, send, wait, think, until the
// deadline or ctx ends.
func (r *runner) vu(ctx context.Context, stage, idx int, ch chooser, deadline time.Time) []Record {
	var out []Record
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		rec := r.send(ctx, ch.function())
		rec.Stage, rec.VU = stage, idx
		out = append(out, rec)
		r.prog.add(rec.OK())
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			// No think time after the stage's end: the reference script's
			// scenarios stop with gracefulStop 0, which interrupts the
			// iteration before its sleep draws one, and a VU that goes on
			// in a later stage must not have drawn it.
			return out
		}
		wait := min(r.cfg.scaled(ch.think()), time.Until(deadline))
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return out
		case <-timer.C:
		}
	}
	return out
}

// send makes one request and records it.
func (r *runner) send(ctx context.Context, fn *Function) Record {
	rec := Record{Function: fn.Name}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.scaled(r.cfg.RequestTimeout))
	defer cancel()
	t0 := time.Now()
	rec.At = r.model(t0.Sub(r.start))
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, r.base+"/run/"+url.PathEscape(fn.Name), bytes.NewReader(fn.Payload))
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err == nil {
		// A body cut short is a transport failure like any other.
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err == nil {
			rec.Status = resp.StatusCode
			rec.Start = parseTemperature(resp.Header.Get("X-Cold-Start"))
			rec.Worker = resp.Header.Get("X-Worker")
		}
	}
	rec.Latency = r.model(time.Since(t0))
	if err != nil {
		rec.Err = err.Error()
	}
	return rec
}

// model converts a wall-clock duration to model time.
func (r *runner) model(d time.Duration) time.Duration {
	return time.Duration(float64(d) / r.cfg.TimeScale)
}

// parseTemperature reads an X-Cold-Start header value.
func parseTemperature(v string) Temperature {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes":
		return Cold
	case "0", "false", "no":
		return Warm
	}
	return Unknown
}
