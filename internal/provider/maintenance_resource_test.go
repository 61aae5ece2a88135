package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// pendingBefore is a plan check: the prior state of addr lists n
// pending defragmentations, each matching re.
type pendingBefore struct {
	addr string
	n    int
	re   *regexp.Regexp
}

func (c pendingBefore) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != c.addr {
			continue
		}
		before, _ := rc.Change.Before.(map[string]any)
		list, _ := before["pending_defragmentation"].([]any)
		if len(list) != c.n {
			resp.Error = fmt.Errorf("%s: pending_defragmentation before the apply %v, want %d entries", c.addr, list, c.n)
			return
		}
		for _, e := range list {
			if s, _ := e.(string); !c.re.MatchString(s) {
				resp.Error = fmt.Errorf("%s: pending entry %q does not match %s", c.addr, s, c.re)
				return
			}
		}
		return
	}
	resp.Error = fmt.Errorf("%s is not in the plan", c.addr)
}

// fragmentAfterNoSpace raises NOSPACE, then deletes and compacts the data
// and waits until every member reports more than half its database free.
// Members report pages a compaction freed only from their second commit
// after it, and nothing commits while NOSPACE refuses writes: each round
// deletes one of the /pad/ keys written first (deletes are allowed).
func fragmentAfterNoSpace(t *testing.T, c *testserver.Cluster) {
	t.Helper()
	ctx := etcdCtx(t)
	cli := c.Client()
	for i := range 200 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/pad/%d", i), "p"); err != nil {
			t.Fatal(err)
		}
	}
	raiseNoSpace(t, c)
	resp, err := cli.Delete(ctx, "/fill/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("delete under NOSPACE: %v", err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %v", err)
	}
	for i := 0; ; i++ {
		ok := true
		for _, ep := range c.Endpoints() {
			st, err := cli.Status(ctx, ep)
			ok = ok && err == nil && st.DbSize > 0 && float64(st.DbSize-st.DbSizeInUse)/float64(st.DbSize) > 0.5
		}
		if ok {
			return
		}
		if i == 200 {
			t.Fatal("the members' databases did not become half free")
		}
		if _, err := cli.Delete(ctx, fmt.Sprintf("/pad/%d", i)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the members' databases did not become half free")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A cluster that ran out of space, then had its data deleted and
// compacted: the plan lists every member for defragmentation as an in-place
// update, one apply defragments them one at a time (never two at once)
// and disarms NOSPACE, and writes succeed again.
func TestAccMaintenanceResource(t *testing.T) {
	accCluster(t)
	c := testserver.Start(t, testserver.WithMembers(3), testserver.WithQuotaBackendBytes(1<<20))
	const addr = "etcd_maintenance.test"
	cfg := fmt.Sprintf(`provider "etcd" {
  endpoints = %s
}
resource "etcd_maintenance" "test" {
  defragment_when_free_over       = "50%%"
  defragment_when_free_bytes_over = "512MiB"
}
`, hclList(c.Endpoints()))
	empty := knownvalue.ListExact([]knownvalue.Check{})
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]+$`))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("disarm_nospace"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pending_defragmentation"), empty),
				},
			},
			{
				PreConfig: func() { fragmentAfterNoSpace(t, c) },
				Config:    cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(addr, tfjsonpath.New("pending_defragmentation"), empty),
					pendingBefore{addr: addr, n: 3, re: regexp.MustCompile(`^defragment m[0-2] \(ID [0-9a-f]+\): [5-9][0-9]% free: `)},
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("pending_defragmentation"), empty),
				},
				Check: func(*terraform.State) error {
					ctx := etcdCtx(t)
					if left := noSpaceMembers(t, c); len(left) != 0 {
						return fmt.Errorf("NOSPACE alarms left: %v", left)
					}
					if _, err := c.Client().Put(ctx, "/after", "x"); err != nil {
						return fmt.Errorf("put after the apply: %w", err)
					}
					return checkDefragmentations(c)
				},
			},
		},
	})
}

// checkDefragmentations: each member was defragmented once, successfully,
// and no two defragmentations overlapped.
func checkDefragmentations(c *testserver.Cluster) error {
	defrags := c.Defragmentations()
	if len(defrags) != 3 {
		return fmt.Errorf("the members served %d defragmentations, want 3: %v", len(defrags), defrags)
	}
	seen := map[string]bool{}
	for _, d := range defrags {
		if d.Err != nil || seen[d.Member] {
			return fmt.Errorf("defragmentation %+v (member seen before: %t)", d, seen[d.Member])
		}
		seen[d.Member] = true
	}
	slices.SortFunc(defrags, func(a, b testserver.Defragmentation) int { return a.Start.Compare(b.Start) })
	for i := 1; i < len(defrags); i++ {
		if defrags[i].Start.Before(defrags[i-1].End) {
			return fmt.Errorf("defragmentation of %s started at %s, before that of %s ended at %s", defrags[i].Member,
				defrags[i].Start.Format(time.StampMicro), defrags[i-1].Member, defrags[i-1].End.Format(time.StampMicro))
		}
	}
	return nil
}

// Bad thresholds fail the plan, naming the attribute, before anything
// is measured.
func TestAccMaintenanceResourceInvalid(t *testing.T) {
	accCluster(t)
	step := func(body, want string) resource.TestStep {
		return resource.TestStep{
			Config:      providerConfig() + "resource \"etcd_maintenance\" \"bad\" {\n" + body + "\n}\n",
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(want),
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			step(`defragment_when_free_over = "130%"`, `(?s)defragment_when_free_over.*out\s+of\s+range`),
			step(`defragment_when_free_over = "0%"`, `(?s)defragment_when_free_over.*out\s+of\s+range`),
			step(`defragment_when_free_over = "30"`, `(?s)defragment_when_free_over.*with\s+a\s+%\s+sign`),
			step(`defragment_when_free_bytes_over = "12XB"`, `(?s)defragment_when_free_bytes_over.*unknown\s+unit`),
			step(`defragment_when_free_bytes_over = "0MiB"`, `(?s)defragment_when_free_bytes_over.*out\s+of\s+range`),
			step(`defragment_when_free_bytes_over = "lots"`, `(?s)defragment_when_free_bytes_over.*(not\s+a\s+size|unknown\s+unit)`),
			step(`disarm_nospace = false`, `(?s)defragment_when_free_over.*defragment_when_free_bytes_over`),
		},
	})
}
