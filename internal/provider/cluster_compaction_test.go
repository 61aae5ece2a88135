package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
)

func TestCompactionRetention(t *testing.T) {
	for _, tc := range []struct{ mode, retention, want string }{
		{"periodic", "1h", ""},
		{"periodic", "30m", ""},
		{"periodic", "2", ""},
		{"periodic", "0", ""},
		{"revision", "10000", ""},
		{"revision", "0", ""},
		{"periodic", "-1h", "negative"},
		{"periodic", "-3", "negative"},
		{"periodic", "an hour", "not a duration"},
		{"revision", "1h", "not a number of revisions"},
		{"revision", "-5", "negative"},
	} {
		err := checkCompactionRetention(tc.mode, tc.retention)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %q: %v", tc.mode, tc.retention, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %q: %v, want %q", tc.mode, tc.retention, err, tc.want)
		}
	}
}

// The attributes end up in the settings the config file is rendered from,
// as keys etcd's config file knows, and settings may not repeat them.
func TestCompactionSettings(t *testing.T) {
	m := clusterModel{AutoCompactionMode: types.StringValue("revision"), AutoCompactionRetention: types.StringValue("1000")}
	got := m.compactionSettings(map[string]string{"snapshot-count": "5000"})
	want := map[string]string{"snapshot-count": "5000", "auto-compaction-mode": "revision", "auto-compaction-retention": "1000"}
	if len(got) != len(want) {
		t.Fatalf("settings %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("settings[%q] = %q, want %q", k, got[k], v)
		}
	}
	if err := etcdconf.ValidateSettings(got); err != nil {
		t.Errorf("etcd rejects the rendered settings: %v", err)
	}

	ctx := context.Background()
	resp := &validator.MapResponse{}
	compactionSettingsValidator{}.ValidateMap(ctx, validator.MapRequest{
		Path:        path.Root("settings"),
		ConfigValue: types.MapValueMust(types.StringType, map[string]attr.Value{"auto-compaction-retention": types.StringValue("1h")}),
	}, resp)
	if !resp.Diagnostics.HasError() {
		t.Fatal("settings[\"auto-compaction-retention\"] accepted")
	}
	d := resp.Diagnostics.Errors()[0]
	if !strings.Contains(d.Detail(), "auto_compaction_retention") || !strings.Contains(d.Detail(), `settings["auto-compaction-retention"]`) {
		t.Errorf("detail %q does not name the attribute to use", d.Detail())
	}
}
