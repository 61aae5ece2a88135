package testserver

import (
	"fmt"
	"net"
	"testing"
)

// TestReservePort checks the two properties the port scheme relies on: the
// kernel never hands a reserved port to anybody binding port 0, and the
// owner can listen on it, stop and listen again.
func TestReservePort(t *testing.T) {
	t.Parallel()
	reserved := map[int]bool{}
	for range 200 {
		port, release, err := reservePort()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release)
		reserved[port] = true
	}
	// Without the reservation about 200/28000 of these would collide.
	for range 2000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if reserved[port] {
			t.Fatalf("port %d was reserved but handed out", port)
		}
	}

	port, release, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := range 3 {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen #%d on reserved port: %v", i, err)
		}
		// Leave a connection behind (TIME_WAIT) before listening again.
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		l.Close()
	}
}
