package server

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// notifySocketEnv is the variable systemd sets for services with Type=notify.
const notifySocketEnv = "NOTIFY_SOCKET"

// sdNotify sends state (for example "READY=1") to the service manager when
// the process runs under systemd with Type=notify, as sd_notify(3) does. It
// returns false, nil when NOTIFY_SOCKET is not set.
//
// A socket name starting with '@' is an abstract socket (Linux).
func sdNotify(state string) (bool, error) {
	name := os.Getenv(notifySocketEnv)
	if name == "" {
		return false, nil
	}
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("%s: %w", notifySocketEnv, err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("%s: %w", notifySocketEnv, err)
	}
	return true, nil
}
