package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func backupModelFor(t *testing.T, node, interval string, taken map[string]time.Time) (plan, state clusterModel) {
	t.Helper()
	obj, d := types.ObjectValue(map[string]attr.Type{
		"dir": types.StringType, "interval": types.StringType, "keep": types.Int64Type, "node": types.StringType, "copy_command": types.StringType,
	}, map[string]attr.Value{
		"dir": types.StringValue("/b"), "interval": types.StringValue(interval), "keep": types.Int64Value(3),
		"node": types.StringValue(node), "copy_command": types.StringNull(),
	})
	if d.HasError() {
		t.Fatal(d)
	}
	var elems []attr.Value
	for n, at := range taken {
		o, d := types.ObjectValue(clusterBackupsAttrTypes, map[string]attr.Value{
			"node": types.StringValue(n), "name": types.StringValue("x"), "revision": types.Int64Value(1),
			"taken_at": types.StringValue(at.UTC().Format(time.RFC3339)),
		})
		if d.HasError() {
			t.Fatal(d)
		}
		elems = append(elems, o)
	}
	list, d := types.ListValue(types.ObjectType{AttrTypes: clusterBackupsAttrTypes}, elems)
	if d.HasError() {
		t.Fatal(d)
	}
	plan.Backup, state.Backups = obj, list
	return plan, state
}

// TestUnitWarnStaleBackups: a newest backup older than twice the interval
// is a warning naming the node; with node = "leader" only the cluster's
// newest counts (the leader moves).
func TestUnitWarnStaleBackups(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		node  string
		taken map[string]time.Time
		warn  string
	}{
		{"all", map[string]time.Time{"n1": now.Add(-time.Minute), "n2": now.Add(-3 * time.Hour)}, "n2"},
		{"all", map[string]time.Time{"n1": now.Add(-time.Minute), "n2": now.Add(-90 * time.Minute)}, ""},
		{"leader", map[string]time.Time{"n1": now.Add(-time.Minute), "n2": now.Add(-5 * time.Hour)}, ""},
		{"leader", map[string]time.Time{"n1": now.Add(-150 * time.Minute), "n2": now.Add(-5 * time.Hour)}, "newest backup of the cluster"},
	} {
		plan, state := backupModelFor(t, tc.node, "1h", tc.taken)
		var diags diag.Diagnostics
		warnStaleBackups(context.Background(), plan, state, &diags)
		got := ""
		for _, d := range diags.Warnings() {
			got += d.Detail()
		}
		if (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
			t.Errorf("node=%s %v: warnings %q, want one naming %q", tc.node, tc.taken, got, tc.warn)
		}
	}
}
