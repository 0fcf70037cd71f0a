//go:build linux || darwin || freebsd || netbsd || openbsd

package invokerbridge

import "syscall"

// leanSupported: idle connections can be peeked here, so the lean path
// is used.
const leanSupported = true

// peek looks, without waiting or consuming, whether the worker closed the
// connection or sent something unasked: only an empty, open connection is
// alive.
func (lc *leanConn) peek(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	lc.alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true
}
