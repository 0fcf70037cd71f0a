package loadgen

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress shows how a run goes: a bar redrawn in place on a terminal,
// else a line per finished stage. A nil *progress shows nothing.
type progress struct {
	w      io.Writer
	tty    bool
	stages []Stage
	scale  float64 // wall time per model time

	done, errs atomic.Int64

	mu      sync.Mutex // guards the fields below and writes to w
	stage   int
	began   time.Time
	stop    chan struct{}
	stopped chan struct{}
}

func newProgress(w io.Writer, stages []Stage, scale float64) *progress {
	if w == nil {
		return nil
	}
	return &progress{w: w, tty: isTerminal(w), stages: stages, scale: scale}
}

// isTerminal reports whether w is a character device, as a terminal is.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) add(ok bool) {
	if p == nil {
		return
	}
	p.done.Add(1)
	if !ok {
		p.errs.Add(1)
	}
}

// beginStage starts the display of stage i; on a terminal a goroutine
// redraws the bar until endStage stops and waits for it.
func (p *progress) beginStage(i int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stage, p.began = i, time.Now()
	p.mu.Unlock()
	if !p.tty {
		return
	}
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			p.draw()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// draw redraws the bar: the fraction of the stage's time elapsed, and the
// requests and errors of the run so far.
func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stages[p.stage]
	el := time.Since(p.began)
	frac := p.fracLocked(el)
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\rstage %d/%d %3d VUs [%s%s] %3.0f%%  %d req  %d err ",
		p.stage+1, len(p.stages), st.VUs, strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac,
		p.done.Load(), p.errs.Load())
}

func (p *progress) fracLocked(el time.Duration) float64 {
	d := time.Duration(float64(p.stages[p.stage].Duration) * p.scale)
	if d <= 0 {
		return 1
	}
	return min(1, float64(el)/float64(d))
}

// endStage stops the bar of stage i and prints its summary line.
func (p *progress) endStage(i int, s Summary) {
	if p == nil {
		return
	}
	if p.tty {
		close(p.stop)
		<-p.stopped
		p.draw()
		fmt.Fprintln(p.w)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "stage %d/%d: %d VUs, %d requests, %d errors, %.1f req/s, mean %.0f ms, p99 %.0f ms, cold %.1f%%, load CV %.3f\n",
		i+1, len(p.stages), p.stages[i].VUs, s.Requests, s.Errors, s.RPS, s.MeanMS, s.P99MS, 100*s.ColdStartRate, s.LoadCV)
}
