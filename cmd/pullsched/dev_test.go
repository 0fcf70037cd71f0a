package main

import (
	"net"
	"testing"
)

// portTaken tells a busy port (so dev falls back to a free one for its
// embedded broker) from a free one.
func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if !portTaken(port) {
		t.Errorf("port %d in use reported free", port)
	}
	ln.Close()
	if portTaken(port) {
		t.Errorf("port %d reported taken after its listener closed", port)
	}
}
