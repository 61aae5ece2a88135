package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

const keyAddr = "etcd_key.test"

func TestAccKeyResourceLifecycle(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	key := prefix + "config"
	createRevision := statecheck.CompareValue(compare.ValuesSame())
	config := func(value string) string { return providerConfig() + keyConfig(key, value) }

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			// 1. Create.
			{
				Config: config("v1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("id"), knownvalue.StringExact(key)),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value"), knownvalue.StringExact("v1")),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_base64"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("lease"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("version"), knownvalue.Int64Exact(1)),
					createRevision.AddStateValue(keyAddr, tfjsonpath.New("create_revision")),
					statecheck.CompareValuePairs(keyAddr, tfjsonpath.New("create_revision"), keyAddr, tfjsonpath.New("mod_revision"), compare.ValuesSame()),
				},
				Check: checkEtcdValue(key, "v1"),
			},
			// 2. Import.
			{
				ResourceName:      keyAddr,
				ImportState:       true,
				ImportStateId:     key,
				ImportStateVerify: true,
			},
			// 3. Update.
			{
				Config: config("v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(keyAddr, tfjsonpath.New("mod_revision")),
					plancheck.ExpectUnknownValue(keyAddr, tfjsonpath.New("version")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value"), knownvalue.StringExact("v2")),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("version"), knownvalue.Int64Exact(2)),
					createRevision.AddStateValue(keyAddr, tfjsonpath.New("create_revision")),
				},
				Check: checkEtcdValue(key, "v2"),
			},
			// 4. Nothing changed: empty plan.
			{
				Config: config("v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			// 5a. Drift: the value is changed with plain clientv3; plan shows an
			// update, apply restores it.
			{
				PreConfig: func() { mustPut(t, key, "changed outside") },
				Config:    config("v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value"), knownvalue.StringExact("v2")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("version"), knownvalue.Int64Exact(4)),
					createRevision.AddStateValue(keyAddr, tfjsonpath.New("create_revision")),
				},
				Check: checkEtcdValue(key, "v2"),
			},
			// 5b. Drift: the key is deleted outside; plan creates it again.
			{
				PreConfig: func() {
					if _, err := testCluster.Client().Delete(etcdCtx(t), key); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("version"), knownvalue.Int64Exact(1)),
				},
				Check: checkEtcdValue(key, "v2"),
			},
			// 6. Destroy: CheckDestroy reads etcd directly.
		},
	})
}

// changeBetweenPlanAndApply is a pre-apply "plan check" that writes to etcd:
// plugin-testing applies the saved plan after the checks, so this is a
// concurrent writer acting after the plan and before the apply.
type changeBetweenPlanAndApply func()

func (f changeBetweenPlanAndApply) CheckPlan(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
	f()
}

func TestAccKeyResourceChangedAfterPlan(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	key := prefix + "contended"
	config := func(value string) string { return providerConfig() + keyConfig(key, value) }
	var theirs int64
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{Config: config("v1")},
			// Update: someone writes after the plan; the apply refuses.
			{
				Config: config("v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					changeBetweenPlanAndApply(func() { theirs = mustPut(t, key, "theirs").Header.Revision }),
				}},
				ExpectError: errorText("was changed outside Terraform after the plan (mod_revision"),
			},
			// Their value survived; the next plan shows it, and apply replaces it.
			{
				PreConfig: func() {
					if err := checkEtcdValue(key, "theirs")(nil); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("v2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkEtcdValue(key, "v2"),
			},
			// Destroy: someone writes after the plan; the key is not deleted.
			{
				Config:  config("v2"),
				Destroy: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					changeBetweenPlanAndApply(func() { mustPut(t, key, "theirs again") }),
				}},
				ExpectError: errorText("so it was not deleted"),
			},
			{
				PreConfig: func() {
					if err := checkEtcdValue(key, "theirs again")(nil); err != nil {
						t.Fatal(err)
					}
					if theirs == 0 {
						t.Fatal("the concurrent write did not happen")
					}
				},
				Config: config("v2"),
				Check:  checkEtcdValue(key, "v2"),
			},
		},
	})
}

func TestAccKeyResourceBinary(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	key := prefix + "blob"
	blob := []byte{0xff, 0xfe, 0x00, 'a', 0x80}
	b64 := base64.StdEncoding.EncodeToString(blob)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{
				Config: providerConfig() + fmt.Sprintf(`resource "etcd_key" "test" {
  key          = %s
  value_base64 = %s
}
`, hclString(key), hclString(b64)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_base64"), knownvalue.StringExact(b64)),
				},
				Check: checkEtcdValue(key, string(blob)),
			},
			// Not valid UTF-8, so import fills value_base64.
			{
				ResourceName:      keyAddr,
				ImportState:       true,
				ImportStateId:     key,
				ImportStateVerify: true,
			},
			// Managed as text, but etcd is given bytes that are not UTF-8: the
			// diff shows through value_base64, and apply restores the text.
			{
				Config: providerConfig() + keyConfig(key, "text"),
				Check:  checkEtcdValue(key, "text"),
			},
			{
				PreConfig: func() { mustPut(t, key, string(blob)) },
				Config:    providerConfig() + keyConfig(key, "text"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_base64"), knownvalue.Null()),
				}},
				Check: checkEtcdValue(key, "text"),
			},
			{
				RefreshState: true,
				PreConfig:    func() { mustPut(t, key, string(blob)) },
				Check:        resource.TestCheckResourceAttr(keyAddr, "value_base64", b64),
				// The refreshed state now differs from the configuration.
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

func TestAccKeyResourceLease(t *testing.T) {
	accCluster(t)
	// Paused here until the serial tests are done, before the lease is
	// granted: resource.ParallelTest would pause only after this setup, and
	// the lease could expire while the serial tests run.
	t.Parallel()
	prefix := keyPrefix(t)
	key := prefix + "leased"
	lease, err := testCluster.Client().Grant(etcdCtx(t), 600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = testCluster.Client().Revoke(context.Background(), lease.ID) })
	leaseHex := client.FormatLeaseID(int64(lease.ID))
	withLease := func(id string) string {
		return providerConfig() + fmt.Sprintf(`resource "etcd_key" "test" {
  key   = %s
  value = "v"
  lease = %s
}
`, hclString(key), hclString(id))
	}
	checkLease := func(want clientv3.LeaseID) resource.TestCheckFunc {
		return func(*terraform.State) error {
			resp, err := testCluster.Client().Get(context.Background(), key)
			if err != nil {
				return err
			}
			if len(resp.Kvs) != 1 || clientv3.LeaseID(resp.Kvs[0].Lease) != want {
				return fmt.Errorf("key %s: got %v, want lease %x", key, resp.Kvs, want)
			}
			return nil
		}
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{
				Config: withLease(leaseHex),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("lease"), knownvalue.StringExact(leaseHex)),
				},
				Check: checkLease(lease.ID),
			},
			{
				ResourceName:      keyAddr,
				ImportState:       true,
				ImportStateId:     key,
				ImportStateVerify: true,
			},
			// The same lease in upper case and without leading zeros is kept as
			// written: no diff after apply.
			{
				Config: withLease(regexp.MustCompile(`^0+`).ReplaceAllString(upper(leaseHex), "")),
				Check:  checkLease(lease.ID),
			},
			// Detach.
			{
				Config: providerConfig() + keyConfig(key, "v"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(keyAddr, tfjsonpath.New("mod_revision")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("lease"), knownvalue.Null()),
				},
				Check: checkLease(0),
			},
			// A revoked lease: the error is on lease and says what to do.
			{
				PreConfig: func() {
					if _, err := testCluster.Client().Revoke(etcdCtx(t), lease.ID); err != nil {
						t.Fatal(err)
					}
				},
				Config:      withLease(leaseHex),
				ExpectError: errorText("the lease does not exist (it expired or was revoked); grant a new lease"),
			},
		},
	})
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestAccKeyResourceExistingKey(t *testing.T) {
	accCluster(t)
	key := keyPrefix(t) + "taken"
	mustPut(t, key, "someone else's")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		// The existing value is neither taken over nor destroyed.
		CheckDestroy: checkEtcdValue(key, "someone else's"),
		Steps: []resource.TestStep{{
			Config:      providerConfig() + keyConfig(key, "mine"),
			ExpectError: errorText(fmt.Sprintf("terraform import etcd_key.NAME %s", key)),
		}},
	})
}

func TestAccKeyResourceInvalidConfig(t *testing.T) {
	accCluster(t)
	key := keyPrefix(t) + "k"
	config := func(body string) string {
		return providerConfig() + fmt.Sprintf("resource \"etcd_key\" \"test\" {\n  key = %s\n  %s\n}\n", hclString(key), body)
	}
	var steps []resource.TestStep
	for _, s := range []struct{ body, want string }{
		{"value = \"a\"\n  value_base64 = \"YQ==\"", "value and value_base64 are both set; set exactly one"},
		{"", "None of value, value_base64, value_wo and value_base64_wo is set"},
		{"value = \"a\"\n  lease = \"xyz\"", `lease ID "xyz" is not hexadecimal`},
		{"value = \"a\"\n  lease = \"0\"", `lease ID "0" is zero`},
		{"value_base64 = \"not base64!\"", "value_base64 is not valid standard base64"},
		{"value_base64 = \"YR==\"", `write "YQ==" instead`},
	} {
		steps = append(steps, resource.TestStep{Config: config(s.body), ExpectError: errorText(s.want)})
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(keyPrefix(t)),
		Steps:                    steps,
	})
}

func TestKeyModelFromKV(t *testing.T) {
	kv := &client.KeyValue{Key: "/k", Value: []byte("text"), CreateRevision: 2, ModRevision: 5, Version: 3, Lease: 0x1f}

	// Import: neither value attribute set; valid UTF-8 goes to value.
	var m keyResourceModel
	m.fromKV(kv, false)
	if m.Value.ValueString() != "text" || !m.ValueBase64.IsNull() || m.Lease.ValueString() != "000000000000001f" || m.ID.ValueString() != "/k" {
		t.Fatalf("import: %+v", m)
	}

	// Managed as value_base64: stays base64 even for text.
	m = keyResourceModel{ValueBase64: types.StringValue("eA==")}
	m.fromKV(kv, false)
	if !m.Value.IsNull() || m.ValueBase64.ValueString() != "dGV4dA==" {
		t.Fatalf("base64: %+v", m)
	}

	// Managed as value, now binary: moves to value_base64.
	m = keyResourceModel{Value: types.StringValue("text")}
	m.fromKV(&client.KeyValue{Key: "/k", Value: []byte{0xff}}, false)
	if !m.Value.IsNull() || m.ValueBase64.ValueString() != "/w==" || !m.Lease.IsNull() {
		t.Fatalf("binary: %+v", m)
	}

	// The same lease keeps the user's spelling; another one is normalized.
	m = keyResourceModel{Value: types.StringValue("text"), Lease: types.StringValue("1F")}
	m.fromKV(kv, false)
	if m.Lease.ValueString() != "1F" {
		t.Fatalf("lease respelled: %v", m.Lease)
	}
	m.fromKV(&client.KeyValue{Key: "/k", Lease: 0x20}, false)
	if m.Lease.ValueString() != "0000000000000020" {
		t.Fatalf("lease: %v", m.Lease)
	}
}

// The documentation example applies, imports and destroys cleanly.
func TestAccKeyResourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block; ETCDCTL_ENDPOINTS
	// points the in-process provider at the cluster.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	dir := config.StaticDirectory("../../examples/resources/etcd_key")
	// The region key exists already, with the value of the example: adopted.
	mustPut(t, "/app/region", "eu-west-1")
	t.Cleanup(func() { _, _ = c.Client().Delete(context.Background(), "/app/region") })
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkNoKeys("/app/config"),
			checkEtcdValue("/app/region", "eu-west-1"), // keep_on_destroy
		),
		Steps: []resource.TestStep{
			{
				ConfigDirectory: dir,
				Check: resource.ComposeAggregateTestCheckFunc(
					checkEtcdValue("/app/config", `{"log_level":"info","replicas":3}`),
					resource.TestCheckResourceAttr("etcd_key.region", "version", "1"), // not written
					checkEtcdValue("/app/region", "eu-west-1"),
					resource.TestCheckResourceAttrSet("etcd_key.compressed", "value_base64"),
					resource.TestCheckNoResourceAttr("etcd_key.compressed", "value"),
				),
			},
			{
				ConfigDirectory:   dir,
				ResourceName:      "etcd_key.example",
				ImportState:       true,
				ImportStateId:     "/app/config",
				ImportStateVerify: true,
			},
		},
	})
}

// keyBlock is an etcd_key named test with the given attribute lines.
func keyBlock(key string, lines ...string) string {
	return fmt.Sprintf("resource \"etcd_key\" \"test\" {\n  key = %s\n  %s\n}\n", hclString(key), strings.Join(lines, "\n  "))
}

// value_wo is written to etcd and never stored: not in the state, not as a
// hash (checkStateFilesFree also decodes the private state). A value
// changed in etcd shows as drift on value_wo_version and is written again.
func TestAccKeyResourceValueWriteOnly(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	key := prefix + "secret"
	const s1, s2, s3 = "Key-wo-secret-one-5521", "Key-wo-secret-two-6632", "Key-wo-secret-three-7743"
	bin := []byte("Key-wo-binary-\xff\x00-8854")
	workDir := t.TempDir()
	config := func(lines ...string) string { return providerConfig() + keyBlock(key, lines...) }
	wo := func(v string, version int) string {
		return config("value_wo = "+hclString(v), fmt.Sprintf("value_wo_version = %d", version))
	}
	free := func(secrets ...string) resource.TestCheckFunc { return checkStateFilesFree(workDir, key, secrets...) }
	nothingStored := []statecheck.StateCheck{
		statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value"), knownvalue.Null()),
		statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_base64"), knownvalue.Null()),
		statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_wo"), knownvalue.Null()),
		statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_base64_wo"), knownvalue.Null()),
	}

	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		WorkingDir:               workDir,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			// Bad input, refused before anything is written.
			{Config: config(`value = "a"`, `value_wo = "b"`, "value_wo_version = 1"), ExpectError: errorText("value and value_wo are both set")},
			{Config: config(`value_wo = "b"`), ExpectError: errorText("Set value_wo_version")},
			{Config: config(`value = "a"`, "value_wo_version = 1"), ExpectError: errorText("value_wo_version is set but neither value_wo nor value_base64_wo is")},
			{
				Config:            wo(s1, 1),
				ConfigStateChecks: append(nothingStored, statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_wo_version"), knownvalue.Int64Exact(1))),
				Check:             resource.ComposeTestCheckFunc(checkEtcdValue(key, s1), free(s1)),
			},
			{Config: wo(s1, 1), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			// Changed outside Terraform: the HMAC no longer matches, the plan
			// writes the value again.
			{
				PreConfig: func() { mustPut(t, key, "changed outside") },
				Config:    wo(s1, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value_wo_version"), knownvalue.Int64Exact(1)),
					plancheck.ExpectUnknownValue(keyAddr, tfjsonpath.New("mod_revision")),
				}},
				Check: resource.ComposeTestCheckFunc(checkEtcdValue(key, s1), free(s1)),
			},
			{Config: wo(s1, 1), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			// A new version rotates the value.
			{
				Config: wo(s2, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: nothingStored,
				Check:             resource.ComposeTestCheckFunc(checkEtcdValue(key, s2), free(s1, s2)),
			},
			// A new value without a new version is invisible, as documented.
			{
				Config:           wo(s3, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            checkEtcdValue(key, s2),
			},
			// Binary, through value_base64_wo.
			{
				Config:            config("value_base64_wo = "+hclString(base64.StdEncoding.EncodeToString(bin)), "value_wo_version = 3"),
				ConfigStateChecks: nothingStored,
				Check:             resource.ComposeTestCheckFunc(checkEtcdValue(key, string(bin)), free(s1, s2, string(bin))),
			},
			// Deleted outside Terraform: created again.
			{
				PreConfig: func() {
					if _, err := testCluster.Client().Delete(etcdCtx(t), key); err != nil {
						t.Fatal(err)
					}
				},
				Config: wo(s3, 4),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionCreate),
				}},
				Check: resource.ComposeTestCheckFunc(checkEtcdValue(key, s3), free(s1, s2, s3, string(bin))),
			},
			// Back to a plain value: it is in the state again, as value.
			{
				Config:            config(`value = "public"`),
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value"), knownvalue.StringExact("public"))},
				Check:             checkEtcdValue(key, "public"),
			},
		},
	})
}

// On CLIs without write-only arguments, value_wo and values_wo are refused
// up front with a clear error rather than silently dropped.
func TestAccKeyResourceValueWriteOnlyOldCLI(t *testing.T) {
	accCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipAbove(tfversion.Version1_10_0)},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(keyPrefix(t)),
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + keyBlock(keyPrefix(t)+"k", `value_wo = "x"`, "value_wo_version = 1"),
				ExpectError: errorText("Write-only attributes are only supported in Terraform 1.11 and later"),
			},
			{
				Config:      prefixConfig(keyPrefix(t)+"p/", nil, nil, `values_wo = { a = "x" }`, "values_wo_version = 1"),
				ExpectError: errorText("Write-only attributes are only supported in Terraform 1.11 and later"),
			},
		},
	})
}

// adopt_if_equal takes over a key that holds exactly the planned value and
// writes nothing; any other value fails with the import command, and
// nothing changes. keep_on_destroy leaves the key on destroy.
func TestAccKeyResourceAdoptAndKeep(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	same, other := prefix+"same", prefix+"other"
	sameRev := mustPut(t, same, "v1").Header.Revision
	mustPut(t, other, "theirs")
	config := func(key, value string, lines ...string) string {
		return providerConfig() + keyBlock(key, append([]string{"value = " + hclString(value)}, lines...)...)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkEtcdValue(same, "v1"), // kept
			checkEtcdValue(other, "theirs"),
		),
		Steps: []resource.TestStep{
			{
				Config: config(other, "mine", "adopt_if_equal = true"),
				ExpectError: regexp.MustCompile(`(?s)Key exists with another value.*adopt_if_equal.*` +
					regexp.QuoteMeta("terraform import etcd_key.NAME "+other)),
			},
			{
				// Without adopt_if_equal the error says it exists.
				Config:      config(same, "v1"),
				ExpectError: errorText("or set adopt_if_equal = true if it already holds the planned value"),
			},
			{
				Config: config(same, "v1", "adopt_if_equal = true", "keep_on_destroy = true"),
				ConfigStateChecks: []statecheck.StateCheck{
					// Nothing was written: the revision is the one of the put.
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("mod_revision"), knownvalue.Int64Exact(sameRev)),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("version"), knownvalue.Int64Exact(1)),
				},
				Check: checkEtcdValue(same, "v1"),
			},
			{
				Config:           config(same, "v1", "adopt_if_equal = true", "keep_on_destroy = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// Turning keep_on_destroy off and on again is an update that
			// writes nothing.
			{
				Config: config(same, "v1", "adopt_if_equal = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(keyAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(keyAddr, tfjsonpath.New("mod_revision"), knownvalue.Int64Exact(sameRev)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("mod_revision"), knownvalue.Int64Exact(sameRev)),
				},
			},
			{
				Config: config(same, "v1", "keep_on_destroy = true"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("keep_on_destroy"), knownvalue.Bool(true)),
				},
			},
			// Destroy: CheckDestroy finds the key still there.
		},
	})
}

// A write-only secret that already exists is taken over with
// adopt_if_equal without its value ever entering the state (an import
// would read it into the state).
func TestAccKeyResourceAdoptWriteOnly(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	key := prefix + "secret"
	const secret = "Adopt-wo-secret-3391"
	mustPut(t, key, secret)
	workDir := t.TempDir()
	config := func(v string) string {
		return providerConfig() + keyBlock(key, "value_wo = "+hclString(v), "value_wo_version = 1", "adopt_if_equal = true")
	}
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		WorkingDir:               workDir,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{Config: config("a wrong guess"), ExpectError: errorText("adopt_if_equal did not take it over")},
			{
				Config: config(secret),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("value"), knownvalue.Null()),
					statecheck.ExpectKnownValue(keyAddr, tfjsonpath.New("version"), knownvalue.Int64Exact(1)),
				},
				Check: resource.ComposeTestCheckFunc(checkEtcdValue(key, secret), checkStateFilesFree(workDir, key, secret)),
			},
			// The HMAC of the adopted value was recorded: no drift.
			{Config: config(secret), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
		},
	})
}
