package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// --pprof serves Go's profiler index; empty is off; a taken address fails.
func TestPprof(t *testing.T) {
	c := &common{log: zerolog.Nop()}
	stop, err := startPprof(context.Background(), "", c)
	if err != nil {
		t.Fatal(err)
	}
	stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if _, err := startPprof(context.Background(), addr, c); err == nil || !strings.Contains(err.Error(), "--pprof") {
		t.Fatalf("taken address: err %v, want one naming --pprof", err)
	}
	ln.Close()
	stop, err = startPprof(context.Background(), addr, c)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("/debug/pprof/: %d %.200s", resp.StatusCode, body)
	}
}
