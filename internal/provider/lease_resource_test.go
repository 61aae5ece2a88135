package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

const leaseAddr = "etcd_lease.test"

// leaseWithKey is a lease and a key attached to it.
func leaseWithKey(ttl int, key string) string {
	return providerConfig() + fmt.Sprintf(`resource "etcd_lease" "test" {
  ttl = %d
}

resource "etcd_key" "test" {
  key   = %s
  value = "attached"
  lease = etcd_lease.test.id
}
`, ttl, hclString(key))
}

// leaseTTL is etcd's view of a lease: -1 when it does not exist.
func leaseTTL(id int64) (ttl, granted int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := testCluster.Client().TimeToLive(ctx, clientv3.LeaseID(id))
	if err != nil {
		return 0, 0, err
	}
	return resp.TTL, resp.GrantedTTL, nil
}

// waitLeaseTTLBelow waits until etcd reports a remaining TTL below below for
// lease id: time has passed for the lease, however busy the machine.
func waitLeaseTTLBelow(t *testing.T, id, below int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ttl, _, err := leaseTTL(id)
		switch {
		case err == nil && ttl == -1:
			t.Fatalf("lease %x is gone", id)
		case err == nil && ttl < below:
			return
		case time.Now().After(deadline):
			t.Fatalf("lease %x: remaining TTL %d (%v), not below %d after 2 minutes", id, ttl, err, below)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaseFromState records the lease ID in state into *id.
func leaseFromState(id *int64) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[leaseAddr]
		if !ok {
			return fmt.Errorf("%s not in state", leaseAddr)
		}
		v, err := client.ParseLeaseID(rs.Primary.ID)
		if err != nil {
			return err
		}
		*id = v
		return nil
	}
}

// checkKeyLease asserts that key exists in etcd attached to *id.
func checkKeyLease(key string, id *int64) resource.TestCheckFunc {
	return func(*terraform.State) error {
		resp, err := testCluster.Client().Get(context.Background(), key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 1 || resp.Kvs[0].Lease != *id {
			return fmt.Errorf("key %s: got %v, want it attached to lease %x", key, resp.Kvs, *id)
		}
		return nil
	}
}

func checkLeaseGone(id *int64) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if *id == 0 {
			return fmt.Errorf("no lease recorded")
		}
		ttl, _, err := leaseTTL(*id)
		if err != nil {
			return err
		}
		if ttl != -1 {
			return fmt.Errorf("lease %x still exists (TTL %d)", *id, ttl)
		}
		return nil
	}
}

func TestAccLeaseResourceLifecycle(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	key := prefix + "attached"
	var first, second, third int64
	var secondTTL int64 // etcd's remaining TTL of the second lease after step 3
	hex16 := knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]{16}$`))

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkNoKeys(prefix),
			checkLeaseGone(&third),
		),
		Steps: []resource.TestStep{
			// 1. Create: the lease and a key attached to it.
			{
				Config: leaseWithKey(600, key),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(leaseAddr, tfjsonpath.New("id"), hex16),
					statecheck.ExpectKnownValue(leaseAddr, tfjsonpath.New("ttl"), knownvalue.Int64Exact(600)),
					statecheck.ExpectKnownValue(leaseAddr, tfjsonpath.New("granted_ttl"), knownvalue.Int64Exact(600)),
					statecheck.CompareValuePairs(leaseAddr, tfjsonpath.New("id"), keyAddr, tfjsonpath.New("lease"), compare.ValuesSame()),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					leaseFromState(&first),
					checkKeyLease(key, &first),
				),
			},
			// 2. Import by ID.
			{
				ResourceName:      leaseAddr,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return s.RootModule().Resources[leaseAddr].Primary.ID, nil
				},
			},
			// 3. Update: a new TTL replaces the lease, and the key with it, in
			// one plan; the old lease is revoked.
			{
				Config: leaseWithKey(900, key),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(leaseAddr, plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectUnknownValue(keyAddr, tfjsonpath.New("lease")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(leaseAddr, tfjsonpath.New("granted_ttl"), knownvalue.Int64Exact(900)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkLeaseGone(&first),
					leaseFromState(&second),
					checkKeyLease(key, &second),
					func(*terraform.State) error {
						var err error
						secondTTL, _, err = leaseTTL(second)
						return err
					},
				),
			},
			// 4. Nothing changed, and the lease has counted down: the
			// remaining TTL is not in state, so the plan is empty.
			{
				PreConfig: func() { waitLeaseTTLBelow(t, second, secondTTL) },
				Config:    leaseWithKey(900, key),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			// 5. Drift: the lease is revoked outside Terraform, which deletes
			// the key. One plan grants a new lease and creates the key again.
			{
				PreConfig: func() {
					if _, err := testCluster.Client().Revoke(etcdCtx(t), clientv3.LeaseID(second)); err != nil {
						t.Fatal(err)
					}
				},
				Config: leaseWithKey(900, key),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(leaseAddr, plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					leaseFromState(&third),
					checkKeyLease(key, &third),
					func(*terraform.State) error {
						if third == second {
							return fmt.Errorf("the revoked lease %x is still in state", second)
						}
						return nil
					},
				),
			},
			// 6. Destroy: CheckDestroy finds the lease revoked and the key gone.
		},
	})
}

func TestAccLeaseResourceInvalidConfig(t *testing.T) {
	accCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + "resource \"etcd_lease\" \"test\" {\n  ttl = 0\n}\n",
				ExpectError: errorText("ttl value must be at least 1, got: 0"),
			},
			{
				Config:      providerConfig() + "resource \"etcd_lease\" \"test\" {}\n",
				ExpectError: regexp.MustCompile(`The argument "ttl" is required`),
			},
			{
				Config:        providerConfig() + "resource \"etcd_lease\" \"test\" {\n  ttl = 60\n}\n",
				ResourceName:  leaseAddr,
				ImportState:   true,
				ImportStateId: "0x1f",
				ExpectError:   errorText(`lease ID "0x1f" is not hexadecimal`),
			},
			{
				Config:        providerConfig() + "resource \"etcd_lease\" \"test\" {\n  ttl = 60\n}\n",
				ResourceName:  leaseAddr,
				ImportState:   true,
				ImportStateId: "7ffffffffffffffe",
				ExpectError:   regexp.MustCompile(`(?i)cannot import non-existent remote object`),
			},
		},
	})
}

func TestLeaseChanged(t *testing.T) {
	s := types.StringValue
	null, unknown := types.StringNull(), types.StringUnknown()
	for _, c := range []struct {
		prior, planned types.String
		want           bool
	}{
		{null, s("1f"), false},      // attach
		{null, unknown, false},      // attach to a lease being created
		{s("1f"), null, false},      // detach
		{s("1f"), s("001F"), false}, // same lease
		{s("1f"), s("20"), true},
		{s("1f"), unknown, true}, // the lease is being replaced
	} {
		if got := leaseChanged(c.prior, c.planned); got != c.want {
			t.Errorf("leaseChanged(%v, %v) = %v, want %v", c.prior, c.planned, got, c.want)
		}
	}
}

// The documentation example applies, imports and destroys cleanly.
func TestAccLeaseResourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block; ETCDCTL_ENDPOINTS
	// points the in-process provider at the cluster.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	dir := config.StaticDirectory("../../examples/resources/etcd_lease")
	var id int64
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkNoKeys("/services/api/instance-1"),
			checkLeaseGone(&id),
		),
		Steps: []resource.TestStep{
			{
				ConfigDirectory: dir,
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error {
						v, err := client.ParseLeaseID(s.RootModule().Resources["etcd_lease.session"].Primary.ID)
						id = v
						return err
					},
					checkKeyLease("/services/api/instance-1", &id),
				),
			},
			{
				ConfigDirectory:   dir,
				ResourceName:      "etcd_lease.session",
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return s.RootModule().Resources["etcd_lease.session"].Primary.ID, nil
				},
			},
		},
	})
}
