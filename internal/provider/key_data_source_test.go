package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

func TestAccKeyDataSource(t *testing.T) {
	accCluster(t)
	// Paused here until the serial tests are done, before the lease is
	// granted: resource.ParallelTest would pause only after this setup, and
	// the lease could expire while the serial tests run.
	t.Parallel()
	prefix := keyPrefix(t)
	text, blob, missing := prefix+"text", prefix+"blob", prefix+"missing"
	lease, err := testCluster.Client().Grant(etcdCtx(t), 600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = testCluster.Client().Revoke(etcdCtx(t), lease.ID) })
	put := mustPut(t, text, "hello", clientv3.WithLease(lease.ID))
	mustPut(t, text, "hello") // version 2, no lease
	// Other tests write to the same cluster meanwhile: the last put's own
	// revision, not the first's plus two.
	last := mustPut(t, text, "hello", clientv3.WithLease(lease.ID))
	mustPut(t, blob, "\xff\x00")
	t.Cleanup(func() { _, _ = testCluster.Client().Delete(etcdCtx(t), prefix, clientv3.WithPrefix()) })

	data := func(name, key, extra string) string {
		return fmt.Sprintf("data \"etcd_key\" %q {\n  key = %s\n  %s\n}\n", name, hclString(key), extra)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: providerConfig() + data("text", text, "") + data("blob", blob, "") +
					data("missing", missing, "allow_missing = true"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.etcd_key.text", tfjsonpath.New("exists"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.etcd_key.text", tfjsonpath.New("value"), knownvalue.StringExact("hello")),
					statecheck.ExpectKnownValue("data.etcd_key.text", tfjsonpath.New("value_base64"), knownvalue.StringExact(base64.StdEncoding.EncodeToString([]byte("hello")))),
					statecheck.ExpectKnownValue("data.etcd_key.text", tfjsonpath.New("version"), knownvalue.Int64Exact(3)),
					statecheck.ExpectKnownValue("data.etcd_key.text", tfjsonpath.New("create_revision"), knownvalue.Int64Exact(put.Header.Revision)),
					statecheck.ExpectKnownValue("data.etcd_key.text", tfjsonpath.New("mod_revision"), knownvalue.Int64Exact(last.Header.Revision)),
					statecheck.ExpectKnownValue("data.etcd_key.text", tfjsonpath.New("lease"), knownvalue.StringExact(client.FormatLeaseID(int64(lease.ID)))),

					statecheck.ExpectKnownValue("data.etcd_key.blob", tfjsonpath.New("value"), knownvalue.Null()),
					statecheck.ExpectKnownValue("data.etcd_key.blob", tfjsonpath.New("value_base64"), knownvalue.StringExact("/wA=")),
					statecheck.ExpectKnownValue("data.etcd_key.blob", tfjsonpath.New("lease"), knownvalue.Null()),

					statecheck.ExpectKnownValue("data.etcd_key.missing", tfjsonpath.New("exists"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("data.etcd_key.missing", tfjsonpath.New("value"), knownvalue.Null()),
					statecheck.ExpectKnownValue("data.etcd_key.missing", tfjsonpath.New("value_base64"), knownvalue.Null()),
					statecheck.ExpectKnownValue("data.etcd_key.missing", tfjsonpath.New("mod_revision"), knownvalue.Null()),
				},
			},
			{
				Config:      providerConfig() + data("missing", missing, ""),
				ExpectError: errorText(fmt.Sprintf("The key %q does not exist in etcd", missing)),
			},
			{
				Config:      providerConfig() + data("missing", missing, "allow_missing = false"),
				ExpectError: errorText("set allow_missing = true"),
			},
		},
	})
}

// The data source reads what the resource wrote, in one apply.
func TestAccKeyDataSourceFromResource(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{{
			Config: providerConfig() + keyConfig(prefix+"k", "v") + `
data "etcd_key" "test" {
  key = etcd_key.test.key
  # Read after the write.
  depends_on = [etcd_key.test]
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.etcd_key.test", tfjsonpath.New("value"), knownvalue.StringExact("v")),
				statecheck.CompareValuePairs("data.etcd_key.test", tfjsonpath.New("mod_revision"), keyAddr, tfjsonpath.New("mod_revision"), compare.ValuesSame()),
			},
		}},
	})
}

// The documentation example reads an existing and a missing key.
func TestAccKeyDataSourceExample(t *testing.T) {
	c := accCluster(t)
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	mustPut(t, "/services/api/endpoint", "https://api.internal:8443")
	t.Cleanup(func() { _, _ = c.Client().Delete(context.Background(), "/services/api/endpoint") })
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/data-sources/etcd_key"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("api_endpoint", knownvalue.StringExact("https://api.internal:8443")),
				statecheck.ExpectKnownOutputValue("feature_flags", knownvalue.MapExact(map[string]knownvalue.Check{})),
			},
		}},
	})
}
