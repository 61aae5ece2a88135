package server

import (
	"net"
	"runtime"
	"testing"
	"time"
)

func TestSdNotifyWithoutSocket(t *testing.T) {
	t.Setenv(notifySocketEnv, "")
	sent, err := sdNotify("READY=1")
	if sent || err != nil {
		t.Fatalf("sdNotify = %v, %v; want false, nil", sent, err)
	}
}

func TestSdNotifySendsState(t *testing.T) {
	path, conn := listenNotify(t)
	t.Setenv(notifySocketEnv, path)
	sent, err := sdNotify("READY=1\nSTATUS=ok")
	if !sent || err != nil {
		t.Fatalf("sdNotify = %v, %v", sent, err)
	}
	if got := readNotify(t, conn, 5*time.Second); got != "READY=1\nSTATUS=ok" {
		t.Errorf("received %q", got)
	}
}

func TestSdNotifyAbstractSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract sockets are Linux only")
	}
	name := "etcd-provider-notify-test-" + t.Name()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "@" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	t.Setenv(notifySocketEnv, "@"+name)
	if sent, err := sdNotify("READY=1"); !sent || err != nil {
		t.Fatalf("sdNotify = %v, %v", sent, err)
	}
	if got := readNotify(t, conn, 5*time.Second); got != "READY=1" {
		t.Errorf("received %q", got)
	}
}

func TestSdNotifyUnreachableSocket(t *testing.T) {
	t.Setenv(notifySocketEnv, "/nonexistent/notify.sock")
	if _, err := sdNotify("READY=1"); err == nil {
		t.Fatal("want an error for a missing socket")
	}
}
