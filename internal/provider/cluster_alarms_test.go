package provider

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// alarmTestState is the part of an etcd_cluster state the alarm check
// reads, for a testserver cluster.
func alarmTestState(t *testing.T, c *testserver.Cluster, endpoints []string) clusterModel {
	t.Helper()
	memberType := types.ObjectType{AttrTypes: clusterMemberAttrTypes}
	var members []attr.Value
	for _, m := range c.Members() {
		members = append(members, types.ObjectValueMust(clusterMemberAttrTypes, map[string]attr.Value{
			"id": types.StringValue(client.FormatMemberID(m.ID)), "name": types.StringValue(m.Name),
			"peer_urls": types.ListValueMust(types.StringType, nil), "client_urls": types.ListValueMust(types.StringType, nil),
			"is_learner": types.BoolValue(false),
		}))
	}
	eps, diags := types.ListValueFrom(context.Background(), types.StringType, endpoints)
	if diags.HasError() {
		t.Fatal(diags)
	}
	s := clusterModel{
		Name:          types.StringValue("alarmed"),
		Endpoints:     eps,
		Members:       types.ListValueMust(memberType, members),
		CACertPEM:     types.StringNull(),
		ClientCertPEM: types.StringNull(),
		ClientKeyPEM:  types.StringNull(),
	}
	if tls := c.TLS(); tls != nil {
		s.CACertPEM = types.StringValue(string(tls.CACertPEM))
		s.ClientCertPEM = types.StringValue(string(tls.CertPEM))
		s.ClientKeyPEM = types.StringValue(string(tls.KeyPEM))
	}
	return s
}

// The plan of an etcd_cluster whose member raised NOSPACE warns, naming
// the member and the way out; a healthy or unreachable cluster gives no
// warning. Real alarms: a TLS cluster with a 1 MiB quota, filled.
func TestClusterAlarmWarnings(t *testing.T) {
	accCluster(t)
	c := testserver.Start(t, testserver.WithMembers(3), testserver.WithTLS(), testserver.WithQuotaBackendBytes(1<<20))
	state := alarmTestState(t, c, c.Endpoints())

	var healthy diag.Diagnostics
	warnClusterAlarms(t.Context(), state, &healthy)
	if len(healthy) != 0 {
		t.Fatalf("a healthy cluster: %v, want no diagnostics", healthy)
	}

	raiseNoSpace(t, c)
	before := noSpaceMembers(t, c)
	var diags diag.Diagnostics
	warnClusterAlarms(t.Context(), state, &diags)
	after := noSpaceMembers(t, c)
	if diags.HasError() || len(diags) < len(before) || len(diags) > len(after) {
		t.Fatalf("%d NOSPACE alarms before, %d after; diagnostics: %v", len(before), len(after), diags)
	}
	byName := map[string]uint64{}
	for _, m := range c.Members() {
		byName[m.Name] = m.ID
	}
	warned := map[uint64]bool{}
	for _, d := range diags {
		if d.Summary() != "etcd member out of space (NOSPACE alarm)" ||
			!strings.Contains(d.Detail(), `etcd cluster "alarmed"`) || !strings.Contains(d.Detail(), "etcdctl alarm disarm") ||
			!strings.Contains(d.Detail(), "etcdctl defrag") || !strings.Contains(d.Detail(), "quota-backend-bytes") {
			t.Errorf("warning %q: %q", d.Summary(), d.Detail())
		}
		for name, id := range byName {
			if strings.Contains(d.Detail(), fmt.Sprintf("Member %q (ID %s)", name, client.FormatMemberID(id))) {
				warned[id] = true
			}
		}
	}
	for id := range before {
		if !warned[id] {
			t.Errorf("member %x had NOSPACE before the check and no warning names it: %v", id, diags)
		}
	}
	for id := range warned {
		if !after[id] {
			t.Errorf("member %x is warned about but has no NOSPACE alarm", id)
		}
	}

	// Nothing answers: no warning (the refresh reports the cluster
	// unreachable), and the check gives up within its bound.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + l.Addr().String()
	l.Close()
	var none diag.Diagnostics
	warnClusterAlarms(t.Context(), alarmTestState(t, c, []string{dead}), &none)
	if len(none) != 0 {
		t.Fatalf("an unreachable cluster: %v, want no diagnostics", none)
	}
}
