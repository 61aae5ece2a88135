package provider

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// authenticateCalls is how many Authenticate requests the etcd members of
// this process have answered. The counter is shared by every cluster in the
// process, so only a test that runs alone (not parallel) may compare it.
func authenticateCalls(t *testing.T) float64 {
	t.Helper()
	reqs, err := testserver.HandledRequests()
	if err != nil {
		t.Fatal(err)
	}
	n, ok := reqs["Auth/Authenticate"]
	if !ok {
		t.Fatal("etcd's grpc_server_handled_total has no series for Auth/Authenticate: the members do not export request metrics")
	}
	return n
}

// A refresh checks an etcd_user's password by authenticating (one bcrypt on
// the member) only when the cluster's auth revision moved since etcd last
// accepted it. The provider connects with the root certificate, so every
// Authenticate the members answer is a password check (or one of the test's
// own, counted in). Not parallel: the request counter is process-wide.
func TestAccUserResourcePasswordCheckSkipped(t *testing.T) {
	c := startCluster(t, testserver.WithTLS(), testserver.WithAuth())
	info := c.TLS()
	root := rawClient(t, c, "", "") // the cluster's root certificate
	const users = 3
	config := clusterProvider(c, "cert = "+hclString(string(info.CertPEM)), "key = "+hclString(string(info.KeyPEM))) +
		fmt.Sprintf(`resource "etcd_user" "u" {
  count    = %d
  name     = "checked-${count.index}"
  password = "pw-${count.index}"
}
`, users)
	var before float64
	mark := func() { before = authenticateCalls(t) }
	calls := func(check func(n float64) error) resource.TestCheckFunc {
		return func(*terraform.State) error { return check(authenticateCalls(t) - before) }
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: config},
			// The creates moved the auth revision after each other's
			// records, so this refresh checks the passwords again and, being
			// saved, records the revision.
			{RefreshState: true},
			// Nothing in auth changed since: no refresh of this step (plan,
			// apply, the plan after it) authenticates.
			{
				PreConfig:        mark,
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: calls(func(n float64) error {
					if n != 0 {
						return fmt.Errorf("%v Authenticate requests while the auth revision stood still; want 0", n)
					}
					return nil
				}),
			},
			// A user added outside Terraform moves the revision: every
			// password is checked again (and still matches).
			{
				PreConfig: func() {
					if _, err := root.UserAdd(etcdCtx(t), "outsider", "outsider-pw"); err != nil {
						t.Fatal(err)
					}
					mark()
				},
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check: calls(func(n float64) error {
					if n < users {
						return fmt.Errorf("%v Authenticate requests after the auth revision moved; want at least %d", n, users)
					}
					return nil
				}),
			},
			// A password changed outside Terraform is still found.
			{
				PreConfig: func() {
					if _, err := root.UserChangePassword(etcdCtx(t), "checked-1", "changed-outside"); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("etcd_user.u[1]", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction("etcd_user.u[0]", plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction("etcd_user.u[2]", plancheck.ResourceActionNoop),
				}},
				Check: func(*terraform.State) error {
					if _, err := root.Authenticate(etcdCtx(t), "checked-1", "pw-1"); err != nil {
						return fmt.Errorf("the apply did not set the configured password again: %v", err)
					}
					if _, err := root.Authenticate(etcdCtx(t), "checked-1", "changed-outside"); err == nil {
						return errors.New("the password set outside Terraform still works")
					}
					return nil
				},
			},
		},
	})
	if _, err := root.UserDelete(etcdCtx(t), "outsider"); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Error(err)
	}
}
