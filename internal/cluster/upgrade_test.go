package cluster

import (
	"errors"
	"testing"
)

func TestCheckStep(t *testing.T) {
	for _, tc := range []struct {
		from, to, downgrade string
		want                error
	}{
		{"3.4.23", "3.4.23", "", nil},
		{"3.4.23", "3.5.23", "", nil},
		{"3.4.23", "3.6.17", "", ErrSkipsMinor},
		{"3.4.23", "3.7.3", "", ErrSkipsMinor},
		{"3.5.23", "3.5.36", "", nil},
		{"3.5.23", "3.6.17", "", ErrBelowUpgradeMinimum},
		{"3.5.31", "3.6.0", "", ErrBelowUpgradeMinimum},
		{MinUpgradeFrom35, "3.6.0", "", nil},
		{"3.5.36", "3.6.17", "", nil},
		{"3.6.17", "3.7.3", "", nil},
		{"3.6.10", "3.7.3", "", ErrBelowUpgradeMinimum},
		{MinUpgradeFrom36, "3.7.0", "", nil},
		{"3.6.3", "3.6.17", "", nil}, // patch upgrades have no minimum
		{"3.6.17", "3.6.3", "", nil}, // patch downgrade: same storage format
		{"3.6.17", "3.5.36", "", ErrDowngrade},
		{"3.6.17", "3.5.36", "3.6.0", ErrDowngrade},
		{"3.6.17", "3.5.36", "3.5.0", nil}, // etcdctl downgrade enable 3.5
		{"3.7.3", "3.5.36", "3.5.0", ErrDowngrade},
		{"3.7.3", "3.6.17", "3.6.0", nil},
		{"3.7.3", "4.0.0", "", ErrMajorVersion},
	} {
		from, err1 := ParseVersion(tc.from)
		to, err2 := ParseVersion(tc.to)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		err := CheckStep(from, to, tc.downgrade)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("CheckStep(%s, %s, %q) = %v, want %v", tc.from, tc.to, tc.downgrade, err, tc.want)
		}
	}
}

func TestCheckTargetMixedCluster(t *testing.T) {
	// A cluster half way from 3.4 to 3.5 cannot be sent to 3.6.
	if err := CheckTarget([]string{"3.5.36", "3.4.23", "3.5.36"}, "3.6.17", ""); !errors.Is(err, ErrSkipsMinor) {
		t.Fatalf("CheckTarget = %v, want ErrSkipsMinor", err)
	}
	if err := CheckTarget([]string{"3.5.36", "3.4.23"}, "3.5.36", ""); err != nil {
		t.Fatalf("finishing 3.4 -> 3.5: %v", err)
	}
}

func TestParseVersionOutput(t *testing.T) {
	for out, want := range map[string]string{
		"etcd Version: 3.4.23\nGit SHA: Not provided (use ./build instead of go build)\nGo Version: go1.19.8\n": "3.4.23",
		"etcd Version: 3.6.17\nGit SHA: GitNotFound\n":                                                          "3.6.17",
		"terraform-provider-etcd dev (etcd server 3.7.3, go1.25.1 linux/amd64)\n":                               "3.7.3",
	} {
		got, err := ParseVersionOutput(out)
		if err != nil || got != want {
			t.Errorf("ParseVersionOutput(%q) = %q, %v; want %q", out, got, err, want)
		}
	}
	if _, err := ParseVersionOutput("bash: etcd: not found"); err == nil {
		t.Error("ParseVersionOutput of an error message succeeded")
	}
}
