package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunDispatch(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"version"}, 0, "terraform-provider-etcd dev"},
		{[]string{"server", "--version"}, 0, "etcd server 3."},
		{[]string{"server"}, 2, "--config-file is required"},
		{[]string{"dev", "--members", "0"}, 2, "--members must be between"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"snapshot"}, 2, "snapshot save <filename>"},
		{[]string{"snapshot", "status"}, 2, "want exactly one file name"},
		{[]string{"backup"}, 2, "backup loop --interval D"},
		{[]string{"backup", "run", "--dir", "rel", "--prefix", "p", "--keep", "1", "--endpoint", "http://127.0.0.1:1"}, 2, "must be an absolute path"},
		{[]string{"backup", "loop", "--interval", "1s", "--dir", "/tmp", "--prefix", "p", "--keep", "1", "--endpoint", "http://127.0.0.1:1"}, 2, "shorter than 10s"},
		{[]string{"-h"}, 0, "terraform-provider-etcd server --config-file F"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if code := run(tt.args, &out, &out); code != tt.code {
			t.Errorf("run(%q) = %d, want %d\n%s", tt.args, code, tt.code, &out)
		}
		if !strings.Contains(out.String(), tt.contains) {
			t.Errorf("run(%q) output lacks %q:\n%s", tt.args, tt.contains, &out)
		}
	}
}
