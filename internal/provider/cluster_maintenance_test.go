package provider

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/maintenance"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// memPrivate is a private state in memory.
type memPrivate map[string][]byte

func (p memPrivate) GetKey(_ context.Context, key string) ([]byte, diag.Diagnostics) {
	return p[key], nil
}
func (p memPrivate) SetKey(_ context.Context, key string, value []byte) diag.Diagnostics {
	p[key] = value
	return nil
}

// fillToNoSpace writes 100 small keys under /pad/ (deletes of which make
// the members commit later, see fragmented), then 64 KiB values under
// /fill/ until etcd refuses a write with "database space exceeded", and
// waits for the NOSPACE alarm.
func fillToNoSpace(ctx context.Context, cli *clientv3.Client) error {
	for i := range 100 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/pad/%d", i), "p"); err != nil {
			return err
		}
	}
	value := strings.Repeat("x", 64<<10)
	full := false
	for i := 0; i < 1000 && !full; i++ {
		_, err := cli.Put(ctx, fmt.Sprintf("/fill/%d", i), value)
		switch {
		case errors.Is(err, rpctypes.ErrNoSpace):
			full = true
		case err != nil:
			return fmt.Errorf("put %d: %w", i, err)
		}
	}
	if !full {
		return errors.New("1,000 puts of 64 KiB did not exceed the quota")
	}
	for {
		alarms, err := noSpaceAlarms(ctx, cli)
		if err != nil || len(alarms) > 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.New("no NOSPACE alarm after the quota was exceeded")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func noSpaceAlarms(ctx context.Context, cli *clientv3.Client) (map[uint64]bool, error) {
	resp, err := cli.AlarmList(ctx)
	if err != nil {
		return nil, err
	}
	ids := map[uint64]bool{}
	for _, a := range resp.Alarms {
		if a.Alarm == pb.AlarmType_NOSPACE {
			ids[a.MemberID] = true
		}
	}
	return ids, nil
}

// freeAndFragment deletes /fill/, compacts, and waits until every member
// at endpoints reports more than half of its database free, and at least
// maintenance.MinFreeForRatio. A member reports the pages a compaction
// freed only from its second commit after it, and nothing commits while
// NOSPACE refuses writes: each round deletes one /pad/ key (deletes are
// allowed) to make every member commit.
func freeAndFragment(ctx context.Context, cli *clientv3.Client, endpoints []string) error {
	resp, err := cli.Delete(ctx, "/fill/", clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("delete under NOSPACE: %w", err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	for i := 0; ; i++ {
		ok := true
		var last string
		for _, ep := range endpoints {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				return err
			}
			free := st.DbSize - st.DbSizeInUse
			ok = ok && free*2 > st.DbSize && free >= maintenance.MinFreeForRatio
			last += fmt.Sprintf(" %s: %d of %d in use;", ep, st.DbSizeInUse, st.DbSize)
		}
		if ok {
			return nil
		}
		if _, err := cli.Delete(ctx, fmt.Sprintf("/pad/%d", i)); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the members' databases did not become half free:%s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// defragSpan is one defragmentation a member logged.
type defragSpan struct {
	member     string
	start, end time.Time
}

// memberDefrags reads the defragmentations that the bundled server of each
// host logged ("starting defragment", "finished defragment", with etcd's
// microsecond timestamps) in the process-mode log of cluster name.
// Node n<i+1> runs on hosts[i].
func memberDefrags(hosts []*sshhost.Host, name string) ([]defragSpan, error) {
	var spans []defragSpan
	for i, h := range hosts {
		logs, _ := filepath.Glob(path.Join(h.BaseDir, name, "opt", "run", "*.log"))
		if len(logs) == 0 {
			return nil, fmt.Errorf("%s: no member log under %s", h.Name, path.Join(h.BaseDir, name, "opt", "run"))
		}
		member := fmt.Sprintf("n%d", i+1)
		for _, l := range logs {
			f, err := os.Open(l)
			if err != nil {
				return nil, err
			}
			var open *defragSpan
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var line struct {
					TS  string `json:"ts"`
					Msg string `json:"msg"`
				}
				if json.Unmarshal(sc.Bytes(), &line) != nil {
					continue
				}
				if line.Msg != "starting defragment" && line.Msg != "finished defragment" {
					continue
				}
				ts, err := time.Parse("2006-01-02T15:04:05.000000Z0700", line.TS)
				if err != nil {
					f.Close()
					return nil, fmt.Errorf("%s: timestamp %q: %w", l, line.TS, err)
				}
				switch {
				case line.Msg == "starting defragment" && open == nil:
					open = &defragSpan{member: member, start: ts}
				case line.Msg == "finished defragment" && open != nil:
					open.end = ts
					spans = append(spans, *open)
					open = nil
				default:
					f.Close()
					return nil, fmt.Errorf("%s: %q out of order at %s", l, line.Msg, line.TS)
				}
			}
			f.Close()
			if open != nil {
				return nil, fmt.Errorf("%s: a defragmentation started at %s has not finished", l, open.start)
			}
		}
	}
	slices.SortFunc(spans, func(a, b defragSpan) int { return a.start.Compare(b.start) })
	return spans, nil
}

// Bad thresholds are refused at plan time, naming the attribute; nothing
// is reached. Then: a 3-member cluster on sshd hosts with a 1 MiB quota is
// filled until NOSPACE, its data deleted and compacted; an apply without a
// maintenance block fails, naming the alarm; then the plan shows the
// three defragmentations as an in-place update, and one apply defragments
// each member once, never two at once, and disarms the alarms: writes
// succeed again, and the next plan is empty.
func TestAccClusterMaintenance(t *testing.T) {
	hosts := clusterHosts(t, 3)
	const name = "maint"
	bin := binaryLine(t) + "  service_manager = \"process\"\n"
	config := clusterHCL(name, hosts, 3, bin+`  settings = { "quota-backend-bytes" = "1048576" }
  maintenance = {
    defragment_when_free_over       = "30%"
    defragment_when_free_bytes_over = "512MiB"
  }
`)
	bad := func(m string) string { return clusterHCL(name, hosts, 3, bin+"  maintenance = "+m+"\n") }
	var (
		endpoints    []string
		leaderBefore uint64
		planned      []string
	)
	dial := func() (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	}
	leader := func(ctx context.Context, cli *clientv3.Client) (uint64, error) {
		st, err := cli.Status(ctx, endpoints[0])
		if err != nil {
			return 0, err
		}
		return st.Leader, nil
	}
	names := map[uint64]string{}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      bad(`{ defragment_when_free_over = "100%" }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`maintenance\.defragment_when_free_over:\s+invalid\s+threshold:\s+"100%"\s+is\s+out\s+of\s+range`),
			},
			{
				Config:      bad(`{ defragment_when_free_bytes_over = "0MiB" }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`maintenance\.defragment_when_free_bytes_over:\s+invalid\s+threshold:\s+"0MiB"\s+is\s+out\s+of\s+range`),
			},
			{
				Config:      bad(`{ defragment_when_free_over = "30" }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`maintenance\.defragment_when_free_over:\s+invalid\s+threshold:\s+"30"\s+is\s+not\s+a\s+percentage`),
			},
			{
				Config:      bad(`{ disarm_nospace = true }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)No maintenance threshold.*maintenance\s+sets\s+no\s+threshold`),
			},
			{
				PreConfig: func() { checkHostsEmpty(t, hosts) },
				Config:    config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("maintenance").AtMapKey("pending_defragmentation"), knownvalue.ListExact(nil)),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("maintenance").AtMapKey("disarm_nospace"), knownvalue.Bool(true)),
				},
				Check: resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), func(s *terraform.State) error {
					a := s.RootModule().Resources["etcd_cluster.c"].Primary.Attributes
					var err error
					if endpoints, err = stateEndpoints(s); err != nil {
						return err
					}
					for i := 0; ; i++ {
						id, ok := a[fmt.Sprintf("members.%d.id", i)]
						if !ok {
							break
						}
						var n uint64
						if _, err := fmt.Sscanf(id, "%x", &n); err != nil {
							return err
						}
						names[n] = a[fmt.Sprintf("members.%d.name", i)]
					}
					return nil
				}),
			},
			{
				// Without a maintenance block nothing disarms NOSPACE: the
				// apply stops with an error naming the alarm and the way
				// out, instead of waiting for health until its timeout.
				PreConfig: func() {
					cli, err := dial()
					if err != nil {
						t.Fatal(err)
					}
					defer cli.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					defer cancel()
					if err := fillToNoSpace(ctx, cli); err != nil {
						t.Fatal(err)
					}
					if err := freeAndFragment(ctx, cli, endpoints); err != nil {
						t.Fatal(err)
					}
				},
				Config:      clusterHCL(name, hosts, 3, bin+`  settings = { "quota-backend-bytes" = "1048576" }`+"\n"),
				ExpectError: regexp.MustCompile(`(?s)etcd's\s+NOSPACE\s+alarm\s+is\s+raised\s+for\s+n[123].*add\s+a\s+maintenance\s+block`),
			},
			{
				PreConfig: func() {
					cli, err := dial()
					if err != nil {
						t.Fatal(err)
					}
					defer cli.Close()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if _, err := cli.Put(ctx, "/after", "x"); !errors.Is(err, rpctypes.ErrNoSpace) {
						t.Fatalf("put before the apply: %v, want %v", err, rpctypes.ErrNoSpace)
					}
					if leaderBefore, err = leader(ctx, cli); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("maintenance").AtMapKey("pending_defragmentation"), knownvalue.ListExact(nil)),
						clusterPendingBefore{into: &planned},
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("maintenance").AtMapKey("pending_defragmentation"), knownvalue.ListExact(nil)),
				},
				Check: func(*terraform.State) error {
					cli, err := dial()
					if err != nil {
						return err
					}
					defer cli.Close()
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if left, err := noSpaceAlarms(ctx, cli); err != nil || len(left) > 0 {
						return fmt.Errorf("NOSPACE alarms left after the apply: %v (%v)", left, err)
					}
					if _, err := cli.Put(ctx, "/after", "x"); err != nil {
						return fmt.Errorf("put after the apply: %w", err)
					}
					spans, err := memberDefrags(hosts, name)
					if err != nil {
						return err
					}
					var order []string
					for i, s := range spans {
						order = append(order, s.member)
						t.Logf("defragmented %s from %s to %s", s.member, s.start.Format(time.StampMicro), s.end.Format(time.StampMicro))
						if i > 0 && s.start.Before(spans[i-1].end) {
							return fmt.Errorf("the defragmentation of %s started at %s, before that of %s ended at %s",
								s.member, s.start.Format(time.StampMicro), spans[i-1].member, spans[i-1].end.Format(time.StampMicro))
						}
					}
					if got := slices.Sorted(slices.Values(order)); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
						return fmt.Errorf("defragmentations %v, want each member once", order)
					}
					for i, p := range planned {
						if !strings.HasPrefix(p, "defragment "+order[i]+" (ID ") {
							return fmt.Errorf("the plan said %q, then defragmented %v", planned, order)
						}
					}
					leaderAfter, err := leader(ctx, cli)
					if err != nil {
						return err
					}
					if leaderAfter == leaderBefore {
						if order[2] != names[leaderBefore] {
							return fmt.Errorf("defragmented %v; the leader %s, leader throughout, was not last", order, names[leaderBefore])
						}
					} else {
						t.Logf("leadership moved from %s to %s during the apply: the leader-last order is not checked", names[leaderBefore], names[leaderAfter])
					}
					return nil
				},
			},
		},
	})
}

// clusterPendingBefore checks that the plan of etcd_cluster.c is an update whose
// prior state lists all three members in maintenance.pending_defragmentation,
// as "defragment nX (ID ...): NN% free: ...", and keeps the list.
type clusterPendingBefore struct{ into *[]string }

var pendingEntryRE = regexp.MustCompile(`^defragment n[123] \(ID [0-9a-f]+\): \d+% free: \S+ \S+ of \S+ \S+$`)

func (c clusterPendingBefore) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != "etcd_cluster.c" {
			continue
		}
		before, _ := rc.Change.Before.(map[string]any)
		m, _ := before["maintenance"].(map[string]any)
		list, _ := m["pending_defragmentation"].([]any)
		var entries []string
		for _, e := range list {
			s, _ := e.(string)
			if !pendingEntryRE.MatchString(s) {
				resp.Error = fmt.Errorf("pending entry %q does not match %s", s, pendingEntryRE)
				return
			}
			entries = append(entries, s)
		}
		if len(entries) != 3 {
			resp.Error = fmt.Errorf("pending before the apply: %q, want the three members", entries)
			return
		}
		*c.into = entries
		return
	}
	resp.Error = errors.New("etcd_cluster.c is not in the plan")
}

// maintenanceTestState is the part of an etcd_cluster state that
// maintenance reads, for a testserver cluster.
func maintenanceTestState(t *testing.T, c *testserver.Cluster, freeOver string) clusterModel {
	t.Helper()
	s := alarmTestState(t, c, c.Endpoints())
	s.Maintenance = types.ObjectValueMust(clusterMaintenanceAttrTypes, map[string]attr.Value{
		"defragment_when_free_over":       types.StringValue(freeOver),
		"defragment_when_free_bytes_over": types.StringNull(),
		"disarm_nospace":                  types.BoolValue(true),
		"pending_defragmentation":         types.ListValueMust(types.StringType, nil),
	})
	return s
}

func pendingOf(t *testing.T, m clusterModel) []string {
	t.Helper()
	var diags diag.Diagnostics
	mm, ok := m.maintenanceSettings(context.Background(), &diags)
	if !ok {
		t.Fatalf("no maintenance: %v", diags)
	}
	var out []string
	if d := mm.Pending.ElementsAs(context.Background(), &out, false); d.HasError() {
		t.Fatal(d)
	}
	return out
}

// The refresh, plan and apply steps of etcd_cluster.maintenance on a
// testserver cluster: a refresh lists the fragmented members and records
// them in private state; the plan warns with each and empties the list; the
// apply defragments exactly those, one at a time, leader last.
func TestClusterMaintenanceSteps(t *testing.T) {
	accCluster(t)
	c := testserver.Start(t, testserver.WithMembers(3), testserver.WithQuotaBackendBytes(1<<20))
	ctx := etcdCtx(t)
	if err := fillToNoSpace(ctx, c.Client()); err != nil {
		t.Fatal(err)
	}
	if err := freeAndFragment(ctx, c.Client(), c.Endpoints()); err != nil {
		t.Fatal(err)
	}
	state := maintenanceTestState(t, c, "30%")
	private := memPrivate{}
	var diags diag.Diagnostics
	state.readMaintenance(ctx, private, &diags)
	if len(diags) != 0 {
		t.Fatalf("refresh: %v", diags)
	}
	pending := pendingOf(t, state)
	if len(pending) != 3 {
		t.Fatalf("pending %q, want 3 members", pending)
	}
	var ids []string
	if err := json.Unmarshal(private[privateClusterMaintenance], &ids); err != nil || len(ids) != 3 {
		t.Fatalf("private %q: %v", private[privateClusterMaintenance], err)
	}

	plan := state
	// As the framework plans it: the computed list unknown.
	plan.Maintenance = types.ObjectValueMust(clusterMaintenanceAttrTypes, map[string]attr.Value{
		"defragment_when_free_over":       types.StringValue("30%"),
		"defragment_when_free_bytes_over": types.StringNull(),
		"disarm_nospace":                  types.BoolValue(true),
		"pending_defragmentation":         types.ListUnknown(types.StringType),
	})
	diags = nil
	if !planMaintenance(ctx, &plan, &state, &diags) {
		t.Fatal("the plan was not changed")
	}
	if got := pendingOf(t, plan); len(got) != 0 {
		t.Errorf("planned pending %q, want none", got)
	}
	if len(diags) != 1 || diags[0].Summary() != "etcd cluster maintenance due" || !strings.Contains(diags[0].Detail(), "- "+strings.Join(pending, "\n- ")) {
		t.Fatalf("plan diagnostics: %v", diags)
	}

	diags = nil
	next := memPrivate{}
	plan.applyMaintenance(ctx, state, private, next, &diags)
	if len(diags) != 0 {
		t.Fatalf("apply: %v", diags)
	}
	if string(next[privateClusterMaintenance]) != "[]" {
		t.Errorf("private after the apply: %q", next[privateClusterMaintenance])
	}
	defrags := c.Defragmentations()
	if len(defrags) != 3 {
		t.Fatalf("the members served %v, want 3 defragmentations", defrags)
	}
	for i := 1; i < len(defrags); i++ {
		if defrags[i].Start.Before(defrags[i-1].End) {
			t.Errorf("defragmentations overlap: %+v", defrags)
		}
	}
	for i, d := range defrags {
		if !strings.HasPrefix(pending[i], "defragment "+d.Member+" (ID ") {
			t.Errorf("defragmented %s as number %d; the plan said %q", d.Member, i+1, pending)
		}
	}
	if left := noSpaceMembers(t, c); len(left) != 0 {
		t.Errorf("NOSPACE alarms left: %v", left)
	}
	if _, err := c.Client().Put(ctx, "/after", "x"); err != nil {
		t.Errorf("put after the apply: %v", err)
	}

	// The next refresh finds nothing due.
	diags = nil
	state = plan
	state.readMaintenance(ctx, private, &diags)
	if got := pendingOf(t, state); len(diags) != 0 || len(got) != 0 {
		t.Errorf("refresh after the apply: pending %q, diagnostics %v", got, diags)
	}
}

// With a member down, a refresh of a 3-member cluster plans nothing and
// warns for every member: the one down cannot be measured, and the others'
// defragmentation would leave one healthy voter of three. An apply with a
// stale private list defragments nothing either.
func TestClusterMaintenanceMemberDown(t *testing.T) {
	accCluster(t)
	c := testserver.Start(t, testserver.WithMembers(3), testserver.WithQuotaBackendBytes(1<<20))
	ctx := etcdCtx(t)
	if err := fillToNoSpace(ctx, c.Client()); err != nil {
		t.Fatal(err)
	}
	if err := freeAndFragment(ctx, c.Client(), c.Endpoints()); err != nil {
		t.Fatal(err)
	}
	state := maintenanceTestState(t, c, "30%")
	// What a refresh with every member up recorded.
	private := memPrivate{}
	var diags diag.Diagnostics
	state.readMaintenance(ctx, private, &diags)
	if got := pendingOf(t, state); len(diags) != 0 || len(got) != 3 {
		t.Fatalf("refresh with all members up: pending %q, diagnostics %v", got, diags)
	}
	stale := private[privateClusterMaintenance]

	down := c.Members()[0]
	if err := c.StopMember(ctx, down.Name); err != nil {
		t.Fatal(err)
	}
	diags = nil
	state.readMaintenance(ctx, private, &diags)
	if got := pendingOf(t, state); len(got) != 0 {
		t.Errorf("pending %q with %s down, want none", got, down.Name)
	}
	if diags.HasError() || len(diags) != 3 {
		t.Fatalf("diagnostics %v, want 3 warnings", diags)
	}
	for _, d := range diags {
		want := "the quorum is 2"
		if strings.Contains(d.Detail(), down.Name+" (ID ") {
			want = "cannot be measured"
		}
		if d.Summary() != "etcd member not defragmented" || !strings.Contains(d.Detail(), want) {
			t.Errorf("warning %q: %q, want it to say %q", d.Summary(), d.Detail(), want)
		}
	}

	diags = nil
	state.applyMaintenance(ctx, state, memPrivate{privateClusterMaintenance: stale}, memPrivate{}, &diags)
	if diags.HasError() {
		t.Fatalf("apply: %v", diags)
	}
	warned := 0
	for _, d := range diags {
		if d.Summary() == "etcd member not defragmented" {
			warned++
		}
	}
	if warned != 3 {
		t.Errorf("apply diagnostics %v, want a warning for each member", diags)
	}
	if d := c.Defragmentations(); len(d) != 0 {
		t.Errorf("the members served defragmentations with %s down: %v", down.Name, d)
	}
}
