package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// requiredProviders declares the provider, which calling its functions
// needs. "hashicorp/etcd" is what plugin-testing serves on both CLIs.
const requiredProviders = `terraform {
  required_providers {
    etcd = {
      source = "hashicorp/etcd"
    }
  }
}
`

// functionsSupported skips on CLIs without provider-defined functions
// (Terraform 1.8 and OpenTofu 1.7 added them; Terraform 1.5.7 says why it
// skips).
var functionsSupported = []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_8_0)}

func TestAccFunctionPrefixRangeEnd(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	mustPut(t, prefix+"a", "1")
	mustPut(t, prefix+"b/c", "2")
	mustPut(t, prefix[:len(prefix)-1]+"0", "next to the prefix")
	t.Cleanup(func() {
		_, _ = testCluster.Client().Delete(etcdCtx(t), prefix, clientv3.WithPrefix())
		_, _ = testCluster.Client().Delete(etcdCtx(t), prefix[:len(prefix)-1]+"0")
	})
	call := func(arg string) string {
		return requiredProviders + fmt.Sprintf("output \"end\" {\n  value = provider::etcd::prefix_range_end(%s)\n}\n", arg)
	}
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   functionsSupported,
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			// Bad input first: the last configuration is the one destroyed.
			{
				Config:      call(`"/x\u007f"`),
				ExpectError: errorText("which are not valid UTF-8 and cannot be a Terraform string"),
			},
			{
				Config:      call("null"),
				ExpectError: errorText("argument must not be null"),
			},
			{
				Config: call(`"/app/"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("end", knownvalue.StringExact("/app0")),
				},
			},
			{
				Config: call(`""`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("end", knownvalue.StringExact("\x00")),
				},
			},
			{
				Config: call(`"/café"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("end", knownvalue.StringExact("/cafê")),
				},
			},
			// The range it gives holds exactly the keys under the prefix.
			{
				Config: requiredProviders + providerConfig() + fmt.Sprintf(`data "etcd_keys" "range" {
  key       = %[1]s
  range_end = provider::etcd::prefix_range_end(%[1]s)
}

data "etcd_keys" "prefix" {
  prefix = %[1]s
}
`, hclString(prefix)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.etcd_keys.range", tfjsonpath.New("total_count"), knownvalue.Int64Exact(2)),
					statecheck.CompareValuePairs("data.etcd_keys.range", tfjsonpath.New("keys"), "data.etcd_keys.prefix", tfjsonpath.New("keys"), compare.ValuesSame()),
				},
			},
		},
	})
}

// exampleWithRegistrySource runs a documentation example that declares the
// provider as "terraform-etcd/etcd", as users do, and has no provider block.
// Not parallel: it sets environment variables of this process.
func exampleWithRegistrySource(t *testing.T, dir string, steps ...resource.TestStep) {
	c := accCluster(t)
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	// Serve the in-process provider under the example's source address.
	t.Setenv(resource.EnvTfAccProviderNamespace, "terraform-etcd")
	for i := range steps {
		steps[i].ConfigDirectory = config.StaticDirectory(dir)
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   functionsSupported,
		ProtoV6ProviderFactories: testAccProviders,
		Steps:                    steps,
	})
}

func TestAccFunctionPrefixRangeEndExample(t *testing.T) {
	exampleWithRegistrySource(t, "../../examples/functions/prefix_range_end", resource.TestStep{
		ConfigStateChecks: []statecheck.StateCheck{
			statecheck.ExpectKnownOutputValue("app_range_end", knownvalue.StringExact("/app0")),
		},
	})
}
