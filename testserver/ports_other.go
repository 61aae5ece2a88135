//go:build !linux

package testserver

import (
	"fmt"
	"net"
)

// reservePort picks a free loopback port by listening on 127.0.0.1:0 and
// closing the listener again. Outside Linux there is no portable way to keep
// the port reserved while etcd binds it, so another process may take it
// before etcd does; New retries the whole start with fresh ports when etcd
// reports "address already in use". See ports_linux.go for the race-free
// scheme used on Linux.
func reservePort() (port int, release func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, fmt.Errorf("reserve port: %w", err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, nil, fmt.Errorf("reserve port: %w", err)
	}
	return port, func() {}, nil
}
