package cluster

import (
	"strings"
	"testing"
)

// crashStart finds where the last crash in a member's log begins, so that
// an error shows the cause, not only the bottom of a stack trace.
func TestCrashStart(t *testing.T) {
	zapPanic := `{"level":"panic","msg":"failed to apply request","error":"x"}`
	cases := []struct {
		name string
		log  string
		want int
	}{
		{"no crash", "started\nserving\nready", -1},
		{"runtime panic", "started\npanic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.f()", 1},
		{"etcd panic entry before the runtime's", "started\n" + zapPanic + "\npanic: failed to apply request\n\ngoroutine 7 [running]:", 1},
		{"the last of two crashes (restarted by systemd)",
			"panic: first\ngoroutine 1 [running]:\nstarted again\n" + zapPanic + "\npanic: second\ngoroutine 9 [running]:", 3},
		{"an entry too far before the panic is another crash", zapPanic + "\na\nb\nc\nd\ne\nf\npanic: later", 7},
		{"fatal entry without a runtime panic", `started` + "\n" + `{"level":"fatal","msg":"cannot open database"}` + "\nexit", 1},
		{"runtime fatal error", "started\nfatal error: concurrent map writes\n\ngoroutine 3 [running]:", 1},
		{"panic inside a line is not a crash", `{"level":"info","msg":"recovered from panic: no"}`, -1},
	}
	for _, c := range cases {
		if got := crashStart(strings.Split(c.log, "\n")); got != c.want {
			t.Errorf("%s: crashStart = %d, want %d", c.name, got, c.want)
		}
	}
}
