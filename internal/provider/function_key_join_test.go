package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
)

func TestAccFunctionKeyJoin(t *testing.T) {
	accCluster(t)
	outputs := map[string]struct{ call, want string }{
		"slashes":  {`provider::etcd::key_join("/app/", "/db", "host")`, "/app/db/host"},
		"missing":  {`provider::etcd::key_join("/app", "config")`, "/app/config"},
		"doubled":  {`provider::etcd::key_join("/app//", "//config")`, "/app/config"},
		"prefix":   {`provider::etcd::key_join("/app", "cache/")`, "/app/cache/"},
		"empty":    {`provider::etcd::key_join("", "/app", "", "x")`, "/app/x"},
		"list":     {`provider::etcd::key_join(["/srv", "web", "port"]...)`, "/srv/web/port"},
		"none":     {`provider::etcd::key_join()`, ""},
		"relative": {`provider::etcd::key_join("app", "x")`, "app/x"},
	}
	config := requiredProviders
	var checks []statecheck.StateCheck
	for name, o := range outputs {
		config += "output \"" + name + "\" {\n  value = " + o.call + "\n}\n"
		checks = append(checks, statecheck.ExpectKnownOutputValue(name, knownvalue.StringExact(o.want)))
	}
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   functionsSupported,
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      requiredProviders + "output \"x\" {\n  value = provider::etcd::key_join(\"/a\", null)\n}\n",
				ExpectError: errorText("argument must not be null"),
			},
			{
				Config:            config,
				ConfigStateChecks: checks,
			},
		},
	})
}

func TestAccFunctionKeyJoinExample(t *testing.T) {
	t.Cleanup(func() {
		if testCluster != nil {
			_, _ = testCluster.Client().Delete(context.Background(), "/app/db/host")
		}
	})
	exampleWithRegistrySource(t, "../../examples/functions/key_join", resource.TestStep{
		Check: resource.ComposeAggregateTestCheckFunc(
			checkEtcdValue("/app/db/host", "10.0.0.5"),
			checkEtcdValue("/app/cache/ttl", "60"),
			resource.TestCheckResourceAttr("etcd_key_prefix.cache", "prefix", "/app/cache/"),
		),
	})
}
