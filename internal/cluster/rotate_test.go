package cluster

import (
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

func TestCertDue(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, c := range []struct {
		name     string
		notAfter time.Time
		validity time.Duration
		want     bool
	}{
		{"fresh", now.Add(365 * day), 365 * day, false},
		{"outside the window", now.Add(31 * day), 365 * day, false},
		{"at the window's edge", now.Add(30 * day), 365 * day, true},
		{"inside the window", now.Add(29 * day), 365 * day, true},
		{"expired", now.Add(-time.Minute), 365 * day, true},
		{"outlasts a shortened validity", now.Add(365 * day), 90 * day, true},
		{"no validity configured", now.Add(5 * 365 * day), 0, false},
	} {
		if got := CertDue(c.notAfter, now, c.validity, 30*day); got != c.want {
			t.Errorf("%s: CertDue = %v, want %v", c.name, got, c.want)
		}
	}
}

// A certificate issued with a validity is not due at once, unless the
// renewal window is the whole validity.
func TestIssuedCertNotDue(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []time.Duration{time.Minute, time.Hour, 365 * 24 * time.Hour} {
		tl := &TLS{CA: ca, Validity: v, RenewBefore: v / 2}
		now := time.Now()
		kp, err := ca.IssueClient("root", tl.window(now))
		if err != nil {
			t.Fatal(err)
		}
		if d := kp.Cert.NotAfter.Sub(now); d > v || d < v-time.Second {
			t.Errorf("validity %s: certificate lasts %s", v, d)
		}
		if !kp.Cert.NotBefore.Before(now) {
			t.Errorf("validity %s: NotBefore %s is not before issuance", v, kp.Cert.NotBefore)
		}
		if CertDue(kp.Cert.NotAfter, now, v, tl.renewBefore()) {
			t.Errorf("validity %s: due as soon as issued", v)
		}
		if !CertDue(kp.Cert.NotAfter, now.Add(v/2+time.Second), v, tl.renewBefore()) {
			t.Errorf("validity %s: not due inside the window", v)
		}
	}
}
