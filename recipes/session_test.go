package recipes

import "testing"

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{"a": "a/", "a/": "a/", "a//": "a/", "/x/y": "/x/y/"} {
		got, err := normalizePrefix(in)
		if err != nil || got != want {
			t.Errorf("normalizePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "//"} {
		if _, err := normalizePrefix(in); err == nil {
			t.Errorf("normalizePrefix(%q) succeeded, want ErrInvalidArgument", in)
		}
	}
}
