package shell

import (
	"os/exec"
	"testing"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/app/config":     "/app/config",
		"/acc/Test_x/k-1": "/acc/Test_x/k-1",
		"http://127.0.0.1:2379,http://127.0.0.1:2380": "http://127.0.0.1:2379,http://127.0.0.1:2380",
		"root:p4ss":   "root:p4ss",
		"a=b+c%d@e":   "a=b+c%d@e",
		"/a b":        "'/a b'",
		"/it's":       `'/it'\''s'`,
		"/x/$HOME":    "'/x/$HOME'",
		"$(rm -rf x)": "'$(rm -rf x)'",
		"":            "''",
		"ü":           "'ü'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// A real shell reads each quoted word back as the string it came from.
func TestQuoteRoundTripsThroughSh(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH:", err)
	}
	for _, s := range []string{"plain", "/a b", "it's", "''", `"$(touch /nonexistent/pwned)"`, "a\tb\nc", "`x`", `\`, "*", "~", "#x", "", "ü"} {
		out, err := exec.Command(sh, "-c", "printf '%s' "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("sh read Quote(%q) = %s back as %q (%v)", s, Quote(s), out, err)
		}
	}
}
