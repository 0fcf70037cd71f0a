package cluster

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestStartFailsCleanly: a part that cannot start (here the ingress, whose
// port is taken) makes Start return its error after stopping what had
// started, instead of leaving goroutines behind or panicking.
func TestStartFailsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Workers: 1, ControllerListen: ln.Addr().String()})
	if err == nil || c != nil {
		t.Fatalf("Start on a busy port: cluster %v, err %v", c, err)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want the bind error", err)
	}
}

// TestBrokerPortBusy: the embedded broker's port taken is reported as such.
func TestBrokerPortBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := Start(context.Background(), Config{BrokerPort: port, ControllerListen: "127.0.0.1:0"})
	if err == nil || c != nil || !strings.Contains(err.Error(), "broker") {
		t.Fatalf("cluster %v, err %v", c, err)
	}
}
