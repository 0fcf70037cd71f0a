package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// part is one pullsched process the suite runs, kills and restarts.
type part struct {
	name  string   // scheduler-1, controller, invoker-2, workersim-3
	kind  string   // scheduler, controller, invoker, workersim
	bin   string   // the pullsched binary
	args  []string // subcommand and flags
	addr  string   // its --listen
	ready string   // path that answers 200 when it is ready
	log   string   // file its stdout and stderr are appended to

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	starts  int
	exitErr error
}

// start runs the process; its output is appended to p.log.
func (p *part) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n=== chaos: start %s %s at %s\n", p.bin, strings.Join(p.args, " "), time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "PULLSCHED_LOG_LEVEL=info")
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	p.starts++
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the process runs.
func (p *part) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process and waits up to wait for it to exit;
// it returns whether it exited.
func (p *part) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// kill SIGKILLs the process and waits for it.
func (p *part) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// stop asks the process to stop (SIGTERM) and SIGKILLs it after 15 s.
func (p *part) stop() {
	if !p.signal(syscall.SIGTERM, 15*time.Second) {
		p.kill()
	}
}

var probeClient = &http.Client{Timeout: 2 * time.Second}

// check asks the part's ready path once and returns why it is not ready.
func (p *part) check(ctx context.Context) error {
	if !p.running() {
		return errors.New("not running")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+p.ready, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", p.ready, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// waitReady polls check until it passes or timeout ends; it returns the
// last reason otherwise.
func (p *part) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := p.check(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %w (log: %s)", p.name, timeout, err, p.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freePort returns a loopback address nothing listens on right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// runCmd runs a shell command line (the broker's stop and start) with its
// output appended to log, and bounds it by timeout.
func runCmd(ctx context.Context, line, log string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "\n=== chaos: %s at %s\n", line, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%q: %w (output in %s)", line, err, log)
	}
	return nil
}

// buildBinary builds cmd/pullsched from the module around the working
// directory into dir.
func buildBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "pullsched")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/pullsched/pullsched/cmd/pullsched")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w: %s", err, b)
	}
	return out, nil
}
