package testserver

import (
	"fmt"
	"syscall"
)

// reservePort returns a loopback TCP port that stays reserved for this process
// until release is called, so that a member can be stopped and restarted on
// the same port and no other cluster or process picks it up in between.
//
// How: a socket with SO_REUSEADDR is bound to 127.0.0.1:0 and kept open but
// never put into the listening state. On Linux:
//   - the kernel's port auto-selection (bind to port 0, used by every other
//     Cluster in this or another process, and by most test frameworks) and
//     the ephemeral-port selection of outgoing connections both skip a port
//     that has a bound socket, so nobody else is handed this port;
//   - an explicit bind of the same port by a socket that also sets
//     SO_REUSEADDR succeeds as long as no socket listens on it yet. Go sets
//     SO_REUSEADDR on every listener, so embed's own net.Listen on the
//     port works, and works again after a stop (also across TIME_WAIT).
//
// The only way to collide is a foreign process that explicitly binds this
// very port number without being given it by the kernel (for example one that
// listened on :0, closed, and re-listens later while we hold the reservation).
// New retries the whole start with fresh ports when etcd reports
// "address already in use" to cover that case.
func reservePort() (port int, release func(), err error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("reserve port: socket: %w", err)
	}
	fail := func(step string, err error) (int, func(), error) {
		_ = syscall.Close(fd)
		return 0, nil, fmt.Errorf("reserve port: %s: %w", step, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt SO_REUSEADDR", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fail("bind 127.0.0.1:0", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok || in4.Port == 0 {
		return fail("getsockname", fmt.Errorf("unexpected address %v", sa))
	}
	return in4.Port, func() { _ = syscall.Close(fd) }, nil
}
