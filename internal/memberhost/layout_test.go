package memberhost

import (
	"os"
	"strings"
	"testing"
)

func TestLayout(t *testing.T) {
	l := NewLayout("", "", "")
	want := Layout{InstallDir: "/opt/etcd", DataDir: "/var/lib/etcd", Binary: "/opt/etcd/bin/terraform-provider-etcd",
		Tool: "/opt/etcd/bin/terraform-provider-etcd", Config: "/opt/etcd/etc/etcd.yaml", PKIDir: "/opt/etcd/pki", RunDir: "/opt/etcd/run"}
	if l != want {
		t.Fatalf("defaults: %+v\nwant %+v", l, want)
	}
	if got := strings.Join(l.Command(), " "); got != "/opt/etcd/bin/terraform-provider-etcd server --config-file /opt/etcd/etc/etcd.yaml" {
		t.Errorf("bundled command: %s", got)
	}
	r := NewLayout("/srv/etcd", "/srv/data", "/usr/bin/etcd")
	// The bundled binary is still placed, as a tool only (restore, backups).
	if !r.Remote || r.Binary != "/usr/bin/etcd" || r.Tool != "/srv/etcd/bin/terraform-provider-etcd" || r.Config != "/srv/etcd/etc/etcd.yaml" || r.DataDir != "/srv/data" {
		t.Errorf("remote: %+v", r)
	}
	svc := r.Service("etcd-x", "etcd member x")
	if got := strings.Join(svc.Command, " "); got != "/usr/bin/etcd --config-file /srv/etcd/etc/etcd.yaml" {
		t.Errorf("remote command: %s", got)
	}
	if svc.Name != "etcd-x" || svc.WorkDir != "/srv/etcd" || svc.RunDir != "/srv/etcd/run" || !svc.Notify {
		t.Errorf("service: %+v", svc)
	}
}

func TestDefaultBinary(t *testing.T) {
	p, err := DefaultBinary()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		t.Fatalf("%s: %v, %v; want the test binary, links resolved", p, st, err)
	}
}
