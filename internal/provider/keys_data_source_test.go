package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

const keysAddr = "data.etcd_keys.test"

func TestAccKeysDataSource(t *testing.T) {
	accCluster(t)
	// Paused here until the serial tests are done, before the lease is
	// granted: resource.ParallelTest would pause only after this setup, and
	// the lease could expire while the serial tests run.
	t.Parallel()
	prefix := keyPrefix(t)
	lease, err := testCluster.Client().Grant(etcdCtx(t), 600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = testCluster.Client().Revoke(context.Background(), lease.ID) })
	first := mustPut(t, prefix+"a", "old a")
	// Other tests write to the same cluster meanwhile: the second put's
	// own revision, not the first's plus one.
	second := mustPut(t, prefix+"a", "text a")
	mustPut(t, prefix+"b", "\xff\x00")
	mustPut(t, prefix+"c", "leased", clientv3.WithLease(lease.ID))
	mustPut(t, prefix+"\xfe", "binary key")
	mustPut(t, prefix[:len(prefix)-1]+"0", "next to the prefix, not under it")
	t.Cleanup(func() {
		_, _ = testCluster.Client().Delete(context.Background(), prefix, clientv3.WithPrefix())
		_, _ = testCluster.Client().Delete(context.Background(), prefix[:len(prefix)-1]+"0")
	})
	data := func(body string) string {
		return providerConfig() + fmt.Sprintf("data \"etcd_keys\" \"test\" {\n  %s\n}\n", body)
	}
	key := func(i int, attr string) tfjsonpath.Path {
		return tfjsonpath.New("keys").AtSliceIndex(i).AtMapKey(attr)
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			// Bad input (first: the last configuration is the one destroyed).
			{
				Config:      data("limit = 1"),
				ExpectError: errorText("Exactly one of these attributes must be configured: [prefix,key]"),
			},
			{
				Config:      data(fmt.Sprintf("prefix = %s\n  key = %s", hclString(prefix), hclString(prefix))),
				ExpectError: errorText("Exactly one of these attributes must be configured"),
			},
			{
				Config:      data(fmt.Sprintf("prefix = %s\n  range_end = \"x\"", hclString(prefix))),
				ExpectError: errorText(`Attribute "key" must be specified when "range_end" is specified`),
			},
			{
				Config:      data(fmt.Sprintf("key = %s\n  revision = 999999999", hclString(prefix))),
				ExpectError: errorText("required revision is a future revision"),
			},
			{
				Config: data("prefix = " + hclString(prefix)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("keys"), knownvalue.ListSizeExact(4)),
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("total_count"), knownvalue.Int64Exact(4)),
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("more"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(keysAddr, key(0, "key"), knownvalue.StringExact(prefix+"a")),
					statecheck.ExpectKnownValue(keysAddr, key(0, "value"), knownvalue.StringExact("text a")),
					statecheck.ExpectKnownValue(keysAddr, key(0, "version"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(keysAddr, key(0, "create_revision"), knownvalue.Int64Exact(first.Header.Revision)),
					statecheck.ExpectKnownValue(keysAddr, key(0, "mod_revision"), knownvalue.Int64Exact(second.Header.Revision)),
					statecheck.ExpectKnownValue(keysAddr, key(0, "lease"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keysAddr, key(1, "value"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keysAddr, key(1, "value_base64"), knownvalue.StringExact("/wA=")),
					statecheck.ExpectKnownValue(keysAddr, key(2, "lease"), knownvalue.StringExact(client.FormatLeaseID(int64(lease.ID)))),
					statecheck.ExpectKnownValue(keysAddr, key(3, "key"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keysAddr, key(3, "value"), knownvalue.StringExact("binary key")),
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("header_revision"), knownvalue.NotNull()),
				},
			},
			// key + range_end, limit and keys_only.
			{
				Config: data(fmt.Sprintf("key = %s\n  range_end = %s\n  limit = 2\n  keys_only = true", hclString(prefix+"b"), hclString(prefix+"z"))),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("keys"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue(keysAddr, key(0, "key"), knownvalue.StringExact(prefix+"b")),
					statecheck.ExpectKnownValue(keysAddr, key(1, "key"), knownvalue.StringExact(prefix+"c")),
					statecheck.ExpectKnownValue(keysAddr, key(0, "value_base64"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keysAddr, key(1, "value"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("total_count"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("more"), knownvalue.Bool(false)),
				},
			},
			{
				Config: data(fmt.Sprintf("prefix = %s\n  limit = 1", hclString(prefix))),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("keys"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("total_count"), knownvalue.Int64Exact(4)),
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("more"), knownvalue.Bool(true)),
				},
			},
			// A single key, and a past revision.
			{
				Config: data(fmt.Sprintf("key = %s\n  revision = %d", hclString(prefix+"a"), first.Header.Revision)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keysAddr, tfjsonpath.New("keys"), knownvalue.ListSizeExact(1)),
					statecheck.ExpectKnownValue(keysAddr, key(0, "value"), knownvalue.StringExact("old a")),
				},
			},
		},
	})
}

// The documentation example reads what is there.
func TestAccKeysDataSourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	mustPut(t, "/services/api", "10.0.0.5:8080")
	mustPut(t, "/services/web", "10.0.0.6:80")
	t.Cleanup(func() { _, _ = testCluster.Client().Delete(context.Background(), "/services/", clientv3.WithPrefix()) })
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/data-sources/etcd_keys"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("service_endpoints", knownvalue.MapExact(map[string]knownvalue.Check{
					"/services/api": knownvalue.StringExact("10.0.0.5:8080"),
					"/services/web": knownvalue.StringExact("10.0.0.6:80"),
				})),
				statecheck.ExpectKnownOutputValue("log_keys", knownvalue.ListSizeExact(0)),
			},
		}},
	})
}
