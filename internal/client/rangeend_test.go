package client

import (
	"errors"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestPrefixRangeEnd(t *testing.T) {
	for in, want := range map[string]string{
		"/app/":         "/app0",
		"/app":          "/apq",
		"a":             "b",
		"":              "\x00",
		"\xff":          "\x00",
		"\xff\xff":      "\x00",
		"a\xff":         "b",
		"a\xff\xff":     "b",
		"ab\xfe\xff":    "ab\xff",
		"\x00":          "\x01",
		"/x\x7f":        "/x\x80",
		"/caf\xc3\xa9/": "/caf\xc3\xa90",
	} {
		if got := PrefixRangeEnd(in); got != want {
			t.Errorf("PrefixRangeEnd(%q) = %q, want %q", in, got, want)
		}
		// Same as etcd's own client.
		if got, etcd := PrefixRangeEnd(in), clientv3.GetPrefixRangeEnd(in); got != etcd {
			t.Errorf("PrefixRangeEnd(%q) = %q, clientv3.GetPrefixRangeEnd = %q", in, got, etcd)
		}
	}
}

func TestJoinKey(t *testing.T) {
	for _, c := range []struct {
		parts []string
		want  string
	}{
		{nil, ""},
		{[]string{"/app"}, "/app"},
		{[]string{"/app/"}, "/app/"},
		{[]string{"/app", "config"}, "/app/config"},
		{[]string{"/app/", "/config"}, "/app/config"},
		{[]string{"/app//", "//config"}, "/app/config"},
		{[]string{"/app", "db", "host"}, "/app/db/host"},
		{[]string{"/app/", "/db/", "/host"}, "/app/db/host"},
		{[]string{"/app", "cache/"}, "/app/cache/"},
		{[]string{"/app", "/"}, "/app/"},
		{[]string{"/", "app"}, "/app"},
		{[]string{"", "/app", "", "x"}, "/app/x"},
		{[]string{"app", "x"}, "app/x"},
		{[]string{"/a//b", "c"}, "/a//b/c"},
		{[]string{"/", "/"}, "/"},
		{[]string{"", ""}, ""},
	} {
		if got := JoinKey(c.parts...); got != c.want {
			t.Errorf("JoinKey(%q) = %q, want %q", c.parts, got, c.want)
		}
	}
}

func TestPrefixRangeEndText(t *testing.T) {
	for in, want := range map[string]string{
		"/app/":  "/app0",
		"":       "\x00",
		"/café/": "/café0",
		"/café":  "/cafê",
		"/a\x00": "/a\x01",
	} {
		got, err := PrefixRangeEndText(in)
		if err != nil || got != want {
			t.Errorf("PrefixRangeEndText(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"/x\x7f",   // → 0x80, a lone continuation byte
		"/x\u00bf", // C2 BF → C2 C0, not UTF-8
		"/x\u00ff", // C3 BF → C3 C0, not UTF-8
		"/c\u0326", // → c + U+0327, which normal form C composes to ç
	} {
		if got, err := PrefixRangeEndText(in); !errors.Is(err, ErrRangeEndNotText) {
			t.Errorf("PrefixRangeEndText(%q) = %q, %v; want ErrRangeEndNotText", in, got, err)
		}
	}
}
