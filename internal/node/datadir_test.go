package node

import "testing"

func TestDeepPath(t *testing.T) {
	for dir, want := range map[string]bool{
		"/var/lib/etcd": true, "/var/lib": true, "/opt/etcd/": true, "/var/../opt/etcd": true,
		"/": false, "/var": false, "/var/": false, "/var/../": false, "var/lib/etcd": false, "": false, "/var/lib/..": false,
	} {
		if got := DeepPath(dir); got != want {
			t.Errorf("DeepPath(%q) = %v, want %v", dir, got, want)
		}
	}
}

func TestParseDataDir(t *testing.T) {
	for out, want := range map[string]DataDirState{
		"":               {},
		"exists\n":       {Exists: true},
		"exists\nmember": {Exists: true, HasMember: true},
	} {
		if got := ParseDataDir(out); got != want {
			t.Errorf("ParseDataDir(%q) = %+v, want %+v", out, got, want)
		}
	}
}
