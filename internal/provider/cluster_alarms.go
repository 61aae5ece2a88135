package provider

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
)

// alarmCheckTimeout bounds the alarm check of a plan: a cluster that does
// not answer is the refresh's warning to give, not a reason to hang.
const alarmCheckTimeout = 5 * time.Second

// warnClusterAlarms adds a plan warning for every alarm active in the
// cluster of state, naming the member and what to do. It reaches the
// cluster through the client URLs and client certificate recorded in the
// state; when it cannot, it adds nothing (the refresh has warned already).
func warnClusterAlarms(ctx context.Context, state clusterModel, diags *diag.Diagnostics) {
	var endpoints []string
	if state.Endpoints.IsNull() || state.Endpoints.IsUnknown() ||
		state.Endpoints.ElementsAs(ctx, &endpoints, false).HasError() || len(endpoints) == 0 {
		return
	}
	cfg := client.Config{
		Endpoints:      endpoints,
		DialTimeout:    alarmCheckTimeout,
		RequestTimeout: alarmCheckTimeout,
		// Only what the state says: no ETCDCTL_* variables of the shell.
		LookupEnv: func(string) (string, bool) { return "", false },
	}
	if !state.ClientCertPEM.IsNull() && state.ClientCertPEM.ValueString() != "" {
		cfg.CACert = state.CACertPEM.ValueString()
		cfg.Cert = state.ClientCertPEM.ValueString()
		cfg.Key = state.ClientKeyPEM.ValueString()
	}
	settings, err := cfg.Resolve()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*alarmCheckTimeout)
	defer cancel()
	cl, err := client.Open(ctx, settings)
	if err != nil {
		return
	}
	defer cl.Close()
	alarms, err := cl.Alarms(ctx)
	if err != nil {
		return
	}
	names := memberNamesByID(ctx, state)
	ids := make([]uint64, 0, len(alarms))
	for id := range alarms {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		member := client.FormatMemberID(id)
		if name, ok := names[id]; ok {
			member = fmt.Sprintf("%q (ID %s)", name, member)
		} else {
			member = "with ID " + member
		}
		for _, alarm := range alarms[id] {
			summary, detail := cluster.AlarmAdvice(alarm)
			diags.AddWarning(summary, fmt.Sprintf("Member %s of etcd cluster %q: %s", member, state.Name.ValueString(), detail))
		}
	}
}

// memberNamesByID maps the member IDs of the state's member list to names.
func memberNamesByID(ctx context.Context, state clusterModel) map[uint64]string {
	out := map[uint64]string{}
	if state.Members.IsNull() || state.Members.IsUnknown() {
		return out
	}
	var members []struct {
		ID   string `tfsdk:"id"`
		Name string `tfsdk:"name"`
		// The other attributes are not needed here.
		PeerURLs   []string `tfsdk:"peer_urls"`
		ClientURLs []string `tfsdk:"client_urls"`
		IsLearner  bool     `tfsdk:"is_learner"`
	}
	if state.Members.ElementsAs(ctx, &members, false).HasError() {
		return out
	}
	for _, m := range members {
		if id, err := strconv.ParseUint(m.ID, 16, 64); err == nil {
			out[id] = m.Name
		}
	}
	return out
}
