package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
)

// The ephemeral etcd_key reads a secret for one run: here it is copied
// into other keys through write-only arguments, text and binary, and
// neither the state files nor their private data hold it. A key that does
// not exist is an error naming the key.
func TestAccKeyEphemeralResource(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	const secret = "Ephemeral-secret-4417"
	bin := "Ephemeral-bin-\xff\x01-5528"
	mustPut(t, prefix+"src", secret)
	mustPut(t, prefix+"src-bin", bin)
	t.Cleanup(func() {
		_, _ = testCluster.Client().Delete(etcdCtx(t), prefix+"src")
		_, _ = testCluster.Client().Delete(etcdCtx(t), prefix+"src-bin")
	})
	workDir := t.TempDir()
	config := func(src string) string {
		return providerConfig() + fmt.Sprintf(`
ephemeral "etcd_key" "src" {
  key = %[1]q
}
ephemeral "etcd_key" "bin" {
  key = %[2]q
}
resource "etcd_key" "copy" {
  key              = %[3]q
  value_wo         = ephemeral.etcd_key.src.value
  value_wo_version = 1
}
resource "etcd_key" "copy_bin" {
  key              = %[4]q
  value_base64_wo  = ephemeral.etcd_key.bin.value_base64
  value_wo_version = 1
}
`, src, prefix+"src-bin", prefix+"copy", prefix+"copy-bin")
	}
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		WorkingDir:               workDir,
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkEtcdValue(prefix+"src", secret), // read, never written
			checkKeysGone(prefix+"copy", prefix+"copy-bin"),
		),
		Steps: []resource.TestStep{
			{Config: config(prefix + "missing"), ExpectError: errorText(fmt.Sprintf("The key %q does not exist in etcd", prefix+"missing"))},
			{
				Config: config(prefix + "src"),
				Check: resource.ComposeTestCheckFunc(
					checkEtcdValue(prefix+"copy", secret),
					checkEtcdValue(prefix+"copy-bin", bin),
					checkStateFilesFree(workDir, prefix+"copy", secret, bin, base64.StdEncoding.EncodeToString([]byte(bin))),
				),
			},
			{Config: config(prefix + "src"), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
		},
	})
}

// checkKeysGone asserts that etcd holds none of keys.
func checkKeysGone(keys ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, k := range keys {
			resp, err := testCluster.Client().Get(context.Background(), k)
			if err != nil {
				return err
			}
			if len(resp.Kvs) > 0 {
				return fmt.Errorf("key %q is still in etcd", k)
			}
		}
		return nil
	}
}

// The documentation example applies (Terraform and OpenTofu 1.11+): the
// secret is copied through write-only arguments.
func TestAccKeyEphemeralResourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block; ETCDCTL_ENDPOINTS
	// points the in-process provider at the cluster.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	const secret = "Example-db-password-1357"
	mustPut(t, "/secrets/db/password", secret)
	t.Cleanup(func() { _, _ = c.Client().Delete(context.Background(), "/secrets/db/password") })
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             resource.ComposeTestCheckFunc(checkNoKeys("/app/db/"), checkNoKeys("/app/credentials/")),
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/ephemeral-resources/etcd_key"),
			Check: resource.ComposeTestCheckFunc(
				checkEtcdValue("/app/db/password", secret),
				checkPrefix("/app/credentials/", map[string]string{"db/user": "app", "db/password": secret}),
			),
		}},
	})
}
