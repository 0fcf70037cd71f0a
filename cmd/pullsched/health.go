package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pullsched/pullsched/config"
)

// healthListenDefault is what health probes when neither --url, --listen,
// PULLSCHED_LISTEN nor a config file says otherwise: the controller's (and
// dev's) default address.
const healthListenDefault = "127.0.0.1:9020"

// fileFlag holds --config for health without showing it to config.Load:
// health reads only the listen key of the part's file, where config.Load
// would reject the part's other keys as unknown to health.
type fileFlag struct{ path string }

func (f *fileFlag) String() string     { return "" }
func (f *fileFlag) Set(s string) error { f.path = s; return nil }

// setupHealth is the container health check: the image has no curl, so the
// binary probes its own part. Without --url it asks http://<listen>/readyz
// and, when that path is unknown (a workersim), /status.
func setupHealth(fs *flag.FlagSet, c *common) func(ctx context.Context) error {
	fs.StringVar(&c.listen, "listen", healthListenDefault, "host:port of the part to probe, as the part's own --listen/PULLSCHED_LISTEN (0.0.0.0 and [::] mean this host)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cf := &fileFlag{}
	fs.Var(cf, config.ConfigFlag, "the part's YAML or JSON config file; only its listen key is read")
	// Marking --config as given keeps config.Load away from the file.
	_ = fs.Set(config.ConfigFlag, "")
	url := fs.String("url", "", "probe this URL instead of the part at --listen (healthy: 2xx)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		client := &http.Client{}
		if *url != "" {
			_, err := probe(ctx, client, *url)
			return err
		}
		listen, err := healthListen(fs, c.listen, cf.path, os.Getenv)
		if err != nil {
			return err
		}
		base := "http://" + listen
		status, err := probe(ctx, client, base+"/readyz")
		if status == http.StatusNotFound {
			// A workersim has no /readyz; it answers /status with "ready".
			return probeStatus(ctx, client, base+"/status")
		}
		return err
	}
}

// healthListen resolves the address to probe: --listen or PULLSCHED_LISTEN
// (already applied by config.Load), else the listen key of the config file,
// with an unspecified host replaced by the loopback address.
func healthListen(fs *flag.FlagSet, listen, file string, getenv func(string) string) (string, error) {
	given := getenv(config.EnvName("listen")) != ""
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "listen" })
	if file == "" {
		file = getenv(config.EnvName(config.ConfigFlag))
	}
	if !given && file != "" {
		kv, err := config.ReadFile(file)
		if err != nil {
			return "", err
		}
		if v, ok := kv["listen"]; ok {
			listen = v
		}
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("health: listen %q: %w", listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// probe GETs url and returns its status; any status but 2xx is an error.
func probe(ctx context.Context, client *http.Client, url string) (int, error) {
	status, _, err := get(ctx, client, url)
	return status, err
}

// probeStatus GETs a workersim's /status, which must answer 2xx "ready".
func probeStatus(ctx context.Context, client *http.Client, url string) error {
	_, body, err := get(ctx, client, url)
	if err != nil {
		return err
	}
	if strings.TrimSpace(body) != "ready" {
		return fmt.Errorf("health: %s answered %q, want \"ready\"", url, body)
	}
	return nil
}

func get(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", fmt.Errorf("health: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil && !errors.Is(err, io.EOF) {
		return resp.StatusCode, "", fmt.Errorf("health: reading %s: %w", url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, string(b), fmt.Errorf("health: %s: %s %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return resp.StatusCode, string(b), nil
}
