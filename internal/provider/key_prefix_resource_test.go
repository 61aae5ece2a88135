package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const prefixAddr = "etcd_key_prefix.test"

// prefixConfig is an etcd_key_prefix with the given text and binary values
// and extra attribute lines.
func prefixConfig(prefix string, text map[string]string, bin map[string][]byte, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "resource \"etcd_key_prefix\" \"test\" {\n  prefix = %s\n", hclString(prefix))
	if text != nil {
		b.WriteString("  values = {\n")
		for _, k := range slices.Sorted(maps.Keys(text)) {
			fmt.Fprintf(&b, "    %s = %s\n", hclString(k), hclString(text[k]))
		}
		b.WriteString("  }\n")
	}
	if bin != nil {
		b.WriteString("  values_base64 = {\n")
		for _, k := range slices.Sorted(maps.Keys(bin)) {
			fmt.Fprintf(&b, "    %s = %s\n", hclString(k), hclString(base64.StdEncoding.EncodeToString(bin[k])))
		}
		b.WriteString("  }\n")
	}
	for _, e := range extra {
		b.WriteString("  " + e + "\n")
	}
	b.WriteString("}\n")
	return providerConfig() + b.String()
}

// checkPrefix asserts that etcd holds exactly want under prefix.
func checkPrefix(prefix string, want map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := testCluster.Client().Get(ctx, prefix, clientv3.WithPrefix())
		if err != nil {
			return err
		}
		got := map[string]string{}
		for _, kv := range resp.Kvs {
			got[strings.TrimPrefix(string(kv.Key), prefix)] = string(kv.Value)
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("etcd holds under %q:\n  %q\nwant\n  %q", prefix, got, want)
		}
		return nil
	}
}

// writeAfterPlan is a pre-apply plan check that writes to etcd: it runs
// after the plan and before the apply, as a concurrent writer would.
type writeAfterPlan func()

func (f writeAfterPlan) CheckPlan(context.Context, plancheck.CheckPlanRequest, *plancheck.CheckPlanResponse) {
	f()
}

func TestAccKeyPrefixResourceLifecycle(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	blob := []byte{0xff, 0x00, 0xfe}
	v1 := map[string]string{"a": "1", "b/c": "2", "": "the prefix itself"}
	v2 := map[string]string{"a": "1b", "d": "4", "": "the prefix itself"}
	bin := map[string][]byte{"bin": blob}
	etcd := func(text map[string]string, extra ...string) map[string]string {
		m := maps.Clone(text)
		m["bin"] = string(blob)
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			// 1. Create.
			{
				Config: prefixConfig(prefix, v1, bin),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("id"), knownvalue.StringExact(prefix)),
					statecheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("delete_unmanaged"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("max_txn_ops"), knownvalue.Int64Exact(128)),
					statecheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("values_base64").AtMapKey("bin"), knownvalue.StringExact("/wD+")),
				},
				Check: checkPrefix(prefix, etcd(v1)),
			},
			// 2. Import adopts exactly what is there.
			{
				ResourceName:      prefixAddr,
				ImportState:       true,
				ImportStateId:     prefix,
				ImportStateVerify: true,
			},
			// 3. Update: change one, remove one, add one.
			{
				Config: prefixConfig(prefix, v2, bin),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkPrefix(prefix, etcd(v2)),
			},
			// 4. Nothing changed: empty plan.
			{
				Config: prefixConfig(prefix, v2, bin),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			// 5. Drift: one key changed, one deleted, one binary value put
			// where text is managed, and one unmanaged key added. The plan
			// restores the managed keys; the unmanaged one is left alone.
			{
				PreConfig: func() {
					mustPut(t, prefix+"a", "changed outside")
					mustPut(t, prefix+"", "\xc3\x28")
					mustPut(t, prefix+"e", "someone else's")
					if _, err := testCluster.Client().Delete(etcdCtx(t), prefix+"d"); err != nil {
						t.Fatal(err)
					}
				},
				Config: prefixConfig(prefix, v2, bin),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkPrefix(prefix, etcd(v2, "e", "someone else's")),
			},
			// 6. delete_unmanaged: the plan warns, the apply deletes "e".
			{
				Config: prefixConfig(prefix, v2, bin, "delete_unmanaged = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkPrefix(prefix, etcd(v2)),
			},
			// 7. With delete_unmanaged, a key added outside is drift too.
			{
				PreConfig: func() { mustPut(t, prefix+"f/g", "intruder") },
				Config:    prefixConfig(prefix, v2, bin, "delete_unmanaged = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("values"), knownvalue.MapSizeExact(len(v2))),
				}},
				Check: checkPrefix(prefix, etcd(v2)),
			},
			{
				Config: prefixConfig(prefix, v2, bin, "delete_unmanaged = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			// 8. Destroy: CheckDestroy finds nothing under the prefix.
		},
	})
}

// Create refuses to overwrite; import adopts exactly the keys present, and
// the configuration that matches them plans nothing.
func TestAccKeyPrefixResourceExistingKeys(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	mustPut(t, prefix+"x", "existing")
	mustPut(t, prefix+"y/z", "\x00\xff")
	text := map[string]string{"x": "existing"}
	bin := map[string][]byte{"y/z": {0x00, 0xff}}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{
				Config:      prefixConfig(prefix, map[string]string{"x": "mine", "new": "v"}, nil),
				ExpectError: errorText(fmt.Sprintf("terraform import etcd_key_prefix.NAME %s", prefix)),
			},
			{
				Config:             prefixConfig(prefix, text, bin),
				ResourceName:       prefixAddr,
				ImportState:        true,
				ImportStateId:      prefix,
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					a := states[0].Attributes
					if a["values.%"] != "1" || a["values.x"] != "existing" || a["values_base64.%"] != "1" || a["values_base64.y/z"] != "AP8=" {
						return fmt.Errorf("imported %v", a)
					}
					return nil
				},
			},
			{
				Config: prefixConfig(prefix, text, bin),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			// Adding a suffix that exists outside the resource is refused at
			// plan time.
			{
				PreConfig:   func() { mustPut(t, prefix+"other", "not ours") },
				Config:      prefixConfig(prefix, map[string]string{"x": "existing", "other": "mine"}, bin),
				ExpectError: errorText("already exist in etcd and are not managed by this resource"),
			},
			{
				PreConfig: func() {
					if _, err := testCluster.Client().Delete(etcdCtx(t), prefix+"other"); err != nil {
						t.Fatal(err)
					}
				},
				Config: prefixConfig(prefix, text, bin),
			},
		},
	})
}

// A change spread over several transactions: a concurrent write after the
// plan stops it at that transaction, what went before is recorded, and the
// next plan shows only the rest.
func TestAccKeyPrefixResourceConcurrentChange(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	values := func(v string) map[string]string {
		m := map[string]string{}
		for i := range 300 {
			m[fmt.Sprintf("k%03d", i)] = v
		}
		return m
	}
	want := func(v string, except map[string]string) map[string]string {
		m := values(v)
		maps.Copy(m, except)
		return m
	}
	v3 := values("v2") // k200-k299 change
	for i := 200; i < 300; i++ {
		v3[fmt.Sprintf("k%03d", i)] = "v3"
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{
				Config: prefixConfig(prefix, values("v1"), nil, "max_txn_ops = 100"),
				Check:  checkPrefix(prefix, values("v1")),
			},
			// Transactions [k000-k099] [k100-k199] [k200-k299]; k150 changes
			// after the plan, so the second fails and the third is not tried.
			{
				Config: prefixConfig(prefix, values("v2"), nil, "max_txn_ops = 100"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					writeAfterPlan(func() { mustPut(t, prefix+"k150", "theirs") }),
				}},
				ExpectError: errorText(fmt.Sprintf(`"%sk150" was changed`, prefix)),
			},
			{
				PreConfig: func() {
					m := want("v2", nil)
					for i := 100; i < 300; i++ {
						m[fmt.Sprintf("k%03d", i)] = "v1"
					}
					m["k150"] = "theirs"
					if err := checkPrefix(prefix, m)(nil); err != nil {
						t.Fatal(err)
					}
				},
				Config: prefixConfig(prefix, values("v2"), nil, "max_txn_ops = 100"),
				Check:  checkPrefix(prefix, values("v2")),
			},
			// A change that fits in one transaction (100 keys) is
			// all-or-nothing.
			{
				Config: prefixConfig(prefix, v3, nil),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					writeAfterPlan(func() { mustPut(t, prefix+"k299", "theirs") }),
				}},
				ExpectError: errorText("were changed outside Terraform after they were last read"),
			},
			{
				PreConfig: func() {
					if err := checkPrefix(prefix, want("v2", map[string]string{"k299": "theirs"}))(nil); err != nil {
						t.Fatal(err)
					}
				},
				Config: prefixConfig(prefix, v3, nil),
				Check:  checkPrefix(prefix, v3),
			},
			// Destroy: someone writes after the plan; that key survives, the
			// rest is deleted and the resource stays in state.
			{
				Config:  prefixConfig(prefix, v3, nil),
				Destroy: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					writeAfterPlan(func() { mustPut(t, prefix+"k000", "theirs") }),
				}},
				ExpectError: errorText("so they were not deleted"),
			},
			{
				PreConfig: func() {
					m := maps.Clone(v3)
					m["k000"] = "theirs"
					if err := checkPrefix(prefix, m)(nil); err != nil {
						t.Fatal(err)
					}
				},
				Config: prefixConfig(prefix, v3, nil),
				Check:  checkPrefix(prefix, v3),
			},
		},
	})
}

func TestAccKeyPrefixResourceInvalidConfig(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	var steps []resource.TestStep
	for _, s := range []struct{ config, want string }{
		{prefixConfig(prefix, map[string]string{"a": "1"}, map[string][]byte{"a": []byte("1")}), `These suffixes are in both values and values_base64: "a"`},
		{prefixConfig("", map[string]string{"a": "1"}, nil), "string length must be at least 1"},
		{prefixConfig(prefix, nil, nil, `values_base64 = { a = "YR==" }`), `write "YQ==" instead`},
		{prefixConfig(prefix, nil, nil, "max_txn_ops = 0"), "max_txn_ops value must be at least 1"},
		{prefixConfig(prefix, nil, nil, `values_json = jsonencode(["a"])`), "values_json must be one JSON object whose values are all strings"},
		{prefixConfig(prefix, nil, nil, `values_json = jsonencode({ port = 5432 })`), `the value of "port" is a number, not a string`},
		{prefixConfig(prefix, nil, nil, `values_json = "{\"a\": \"1\", \"a\": \"2\"}"`), `"a" appears twice`},
		{prefixConfig(prefix, nil, nil, `values_json = "{\"a\": \"1\"} {}"`), "there is more after the JSON object"},
		{prefixConfig(prefix, nil, nil, `values_json = "{\"a\": \"1\""`), "the JSON ends too early"},
		{prefixConfig(prefix, map[string]string{"a": "1"}, nil, `values_json = jsonencode({ a = "2" })`),
			`These suffixes are in both values and values_json: "a"`},
		{prefixConfig(prefix, map[string]string{"a": "1"}, nil, "keep_on_destroy = true", "delete_unmanaged = true"),
			"keep_on_destroy and delete_unmanaged are both true"},
		// More operations per transaction than the server allows.
		{prefixConfig(prefix, func() map[string]string {
			m := map[string]string{}
			for i := range 130 {
				m[fmt.Sprint(i)] = "v"
			}
			return m
		}(), nil, "max_txn_ops = 200"), "set max_txn_ops to that value"},
	} {
		steps = append(steps, resource.TestStep{Config: s.config, ExpectError: errorText(s.want)})
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps:                    steps,
	})
}

// Keys written through the provider read back byte for byte with Debian's
// etcdctl 3.4.
func TestAccKeyPrefixResourceEtcdctlInterop(t *testing.T) {
	c := accCluster(t)
	etcdctl, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Skip("etcdctl not found on PATH (Debian: apt-get install etcd-client); CI installs it")
	}
	prefix := keyPrefix(t)
	blob := make([]byte, 256)
	for i := range blob {
		blob[i] = byte(i)
	}
	want := map[string][]byte{
		prefix + "text":        []byte("héllo, wörld\n"),
		prefix + "json":        []byte(`{"a":[1,2,3]}`),
		prefix + "empty":       {},
		prefix + "bin/all":     blob,
		prefix + "bin/invalid": {0xc3, 0x28, 0xff},
		prefix + "single":      {0x00, 0x01, 0xfe, 0xff},
	}
	config := prefixConfig(prefix,
		map[string]string{"text": string(want[prefix+"text"]), "json": string(want[prefix+"json"]), "empty": ""},
		map[string][]byte{"bin/all": blob, "bin/invalid": want[prefix+"bin/invalid"]},
	) + fmt.Sprintf(`resource "etcd_key" "test" {
  key          = %s
  value_base64 = %s
}
`, hclString(prefix+"single"), hclString(base64.StdEncoding.EncodeToString(want[prefix+"single"])))

	readBack := func(*terraform.State) error {
		cmd := exec.Command(etcdctl, "--endpoints="+strings.Join(c.Endpoints(), ","), "get", "--prefix", "-w", "json", prefix)
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("%s: %v", cmd, err)
		}
		var resp struct {
			Kvs []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"kvs"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			return fmt.Errorf("etcdctl output %s: %v", out, err)
		}
		got := map[string][]byte{}
		for _, kv := range resp.Kvs {
			k, err1 := base64.StdEncoding.DecodeString(kv.Key)
			v, err2 := base64.StdEncoding.DecodeString(kv.Value)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("etcdctl output %s", out)
			}
			got[string(k)] = v
		}
		if len(got) != len(want) {
			return fmt.Errorf("etcdctl read %d keys, want %d: %q", len(got), len(want), got)
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || string(g) != string(w) {
				return fmt.Errorf("etcdctl reads %q as %x, want %x", k, g, w)
			}
		}
		// And one value as raw bytes, the way scripts read it.
		cmd = exec.Command(etcdctl, "--endpoints="+strings.Join(c.Endpoints(), ","), "get", "--print-value-only", prefix+"bin/all")
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		raw, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("%s: %v", cmd, err)
		}
		if string(raw) != string(blob)+"\n" {
			return fmt.Errorf("etcdctl --print-value-only: %x", raw)
		}
		return nil
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps:                    []resource.TestStep{{Config: config, Check: readBack}},
	})
}

// The documentation example applies, imports and destroys cleanly.
func TestAccKeyPrefixResourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block; ETCDCTL_ENDPOINTS
	// points the in-process provider at the cluster.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	mustPut(t, "/app/flags/old_flag", "someone left this")
	mustPut(t, "/app/limits/rps", "100") // adopted: the same value
	t.Cleanup(func() { _, _ = c.Client().Delete(context.Background(), "/app/limits/", clientv3.WithPrefix()) })
	dir := config.StaticDirectory("../../examples/resources/etcd_key_prefix")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeAggregateTestCheckFunc(
			checkNoKeys("/app/settings/"),
			checkNoKeys("/app/flags/"),
			checkNoKeys("/app/catalog/"),
			checkPrefix("/app/limits/", map[string]string{"rps": "100", "burst": "200"}), // keep_on_destroy
		),
		Steps: []resource.TestStep{
			{
				ConfigDirectory: dir,
				Check: resource.ComposeAggregateTestCheckFunc(
					checkEtcdValue("/app/settings/db/host", "10.0.0.5"),
					checkEtcdValue("/app/settings/features.json", `{"beta":false,"search":true}`),
					// delete_unmanaged removed the old flag.
					checkPrefix("/app/flags/", map[string]string{"search": "true", "dark_mode": "false"}),
					checkPrefix("/app/catalog/", map[string]string{"sku-0001": "widget", "sku-0002": "gadget"}),
				),
			},
			{
				ConfigDirectory:   dir,
				ResourceName:      "etcd_key_prefix.app",
				ImportState:       true,
				ImportStateId:     "/app/settings/",
				ImportStateVerify: true,
			},
		},
	})
}

// values_wo is written to etcd and never stored; a value changed or deleted
// in etcd shows as drift on values_wo_version; suffixes move between
// values and values_wo; destroy deletes the write-only keys too.
func TestAccKeyPrefixResourceValuesWriteOnly(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	const s1, s2, s3 = "Prefix-wo-one-1184", "Prefix-wo-two-2295", "Prefix-wo-three-3306"
	workDir := t.TempDir()
	wo := func(text map[string]string, secrets map[string]string, version int) string {
		var b strings.Builder
		b.WriteString("values_wo = {\n")
		for _, k := range slices.Sorted(maps.Keys(secrets)) {
			fmt.Fprintf(&b, "    %s = %s\n", hclString(k), hclString(secrets[k]))
		}
		b.WriteString("  }")
		return prefixConfig(prefix, text, nil, b.String(), fmt.Sprintf("values_wo_version = %d", version))
	}
	free := func(secrets ...string) resource.TestCheckFunc {
		return checkStateFilesFree(workDir, prefix, secrets...)
	}
	nullWO := statecheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("values_wo"), knownvalue.Null())

	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		WorkingDir:               workDir,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{Config: prefixConfig(prefix, nil, nil, `values_wo = { a = "x" }`), ExpectError: errorText("Set values_wo_version")},
			{Config: wo(map[string]string{"a": "1"}, map[string]string{"a": "2"}, 1), ExpectError: errorText(`These suffixes are in both values and values_wo: "a"`)},
			{
				Config: wo(map[string]string{"plain": "p"}, map[string]string{"db/password": s1, "api/token": s2}, 1),
				ConfigStateChecks: []statecheck.StateCheck{
					nullWO,
					statecheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("values"), knownvalue.MapExact(map[string]knownvalue.Check{"plain": knownvalue.StringExact("p")})),
				},
				Check: resource.ComposeTestCheckFunc(
					checkPrefix(prefix, map[string]string{"plain": "p", "db/password": s1, "api/token": s2}),
					free(s1, s2),
				),
			},
			{
				Config:           wo(map[string]string{"plain": "p"}, map[string]string{"db/password": s1, "api/token": s2}, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// One changed, one deleted outside Terraform: drift, written again.
			{
				PreConfig: func() {
					mustPut(t, prefix+"db/password", "tampered")
					if _, err := testCluster.Client().Delete(etcdCtx(t), prefix+"api/token"); err != nil {
						t.Fatal(err)
					}
				},
				Config: wo(map[string]string{"plain": "p"}, map[string]string{"db/password": s1, "api/token": s2}, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(prefixAddr, tfjsonpath.New("values_wo_version"), knownvalue.Int64Exact(1)),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkPrefix(prefix, map[string]string{"plain": "p", "db/password": s1, "api/token": s2}),
					free(s1, s2),
				),
			},
			{
				Config:           wo(map[string]string{"plain": "p"}, map[string]string{"db/password": s1, "api/token": s2}, 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// A new version: one rotated, one removed, a plain value made
			// write-only.
			{
				Config: wo(nil, map[string]string{"db/password": s3, "plain": "now secret"}, 2),
				Check: resource.ComposeTestCheckFunc(
					checkPrefix(prefix, map[string]string{"db/password": s3, "plain": "now secret"}),
					free(s1, s2, s3, "now secret"),
				),
			},
			{
				Config:           wo(nil, map[string]string{"db/password": s3, "plain": "now secret"}, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// adopt_if_equal takes over existing keys that hold exactly the planned
// values, and refuses (at plan time, naming the keys, never their values)
// when one differs; keep_on_destroy leaves the keys on destroy.
func TestAccKeyPrefixResourceAdoptAndKeep(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	aRev := mustPut(t, prefix+"a", "1").Header.Revision
	mustPut(t, prefix+"b", "theirs")
	want := map[string]string{"a": "1", "b": "theirs", "c": "3"}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkPrefix(prefix, want), // kept
		Steps: []resource.TestStep{
			{
				Config:      prefixConfig(prefix, map[string]string{"a": "1", "b": "mine", "c": "3"}, nil, "adopt_if_equal = true"),
				ExpectError: regexp.MustCompile(`(?s)Keys exist with other values.*` + regexp.QuoteMeta(`"`+prefix+`b"`) + `.*adopt_if_equal`),
			},
			{
				Config: prefixConfig(prefix, want, nil, "adopt_if_equal = true", "keep_on_destroy = true"),
				Check: resource.ComposeTestCheckFunc(
					checkPrefix(prefix, want),
					func(*terraform.State) error { // a was taken over, not written
						resp, err := testCluster.Client().Get(context.Background(), prefix+"a")
						if err != nil {
							return err
						}
						if resp.Kvs[0].ModRevision != aRev {
							return fmt.Errorf("adopted key was written: mod_revision %d, was %d", resp.Kvs[0].ModRevision, aRev)
						}
						return nil
					},
				),
			},
			{
				Config:           prefixConfig(prefix, want, nil, "adopt_if_equal = true", "keep_on_destroy = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// priorDoc is a plan check on the refreshed state the plan starts from: its
// values_json must decode to want.
type priorDoc map[string]string

func (want priorDoc) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	if req.Plan.PriorState == nil || req.Plan.PriorState.Values == nil {
		resp.Error = fmt.Errorf("the plan has no prior state")
		return
	}
	for _, r := range req.Plan.PriorState.Values.RootModule.Resources {
		if r.Address != prefixAddr {
			continue
		}
		doc, _ := r.AttributeValues["values_json"].(string)
		got, err := decodeJSONObject(doc)
		if err != nil {
			resp.Error = fmt.Errorf("values_json in the refreshed state %q: %v", doc, err)
			return
		}
		if !maps.Equal(got, want) {
			resp.Error = fmt.Errorf("values_json in the refreshed state holds %q, want %q", got, map[string]string(want))
		}
		return
	}
	resp.Error = fmt.Errorf("%s is not in the prior state", prefixAddr)
}

// values_json: the same keys as values, as one document. Reformatting it
// plans an update that writes nothing; a key changed or deleted outside
// Terraform is drift, shown in the refreshed document exactly; values and
// values_json work side by side and a suffix moves between them without a
// write.
func TestAccKeyPrefixResourceValuesJSON(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	doc := func(d string) string { return "values_json = " + d }
	v1 := `jsonencode({ a = "1", "b/c" = "2", "quote\"d" = "<&>" })`
	// The same members, in another order and layout.
	v1Reformatted := "<<-EOT\n    {\n      \"quote\\\"d\": \"\\u003c&>\",\n      \"b/c\" :\"2\", \"a\": \"1\"\n    }\n  EOT"
	want1 := map[string]string{"a": "1", "b/c": "2", `quote"d`: "<&>", "t": "text"}
	text := map[string]string{"t": "text"}
	// rev is the newest mod_revision under the prefix, as last recorded.
	var rev int64
	newest := func() (int64, error) {
		resp, err := testCluster.Client().Get(context.Background(), prefix, clientv3.WithPrefix())
		if err != nil {
			return 0, err
		}
		var n int64
		for _, kv := range resp.Kvs {
			n = max(n, kv.ModRevision)
		}
		return n, nil
	}
	record := func(*terraform.State) (err error) {
		rev, err = newest()
		return err
	}
	noWrites := func(*terraform.State) error {
		n, err := newest()
		if err == nil && n != rev {
			err = fmt.Errorf("keys under %q were written (newest mod_revision %d, was %d) though no value changed", prefix, n, rev)
		}
		return err
	}
	emptyPlan := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	update := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
		plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
	}}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{
				Config: prefixConfig(prefix, text, nil, doc(v1)),
				Check:  resource.ComposeAggregateTestCheckFunc(checkPrefix(prefix, want1), record),
			},
			{Config: prefixConfig(prefix, text, nil, doc(v1)), ConfigPlanChecks: emptyPlan},
			// Another layout of the same members: an update that writes
			// nothing, then no change.
			{
				Config:           prefixConfig(prefix, text, nil, doc(v1Reformatted)),
				ConfigPlanChecks: update,
				Check:            resource.ComposeAggregateTestCheckFunc(checkPrefix(prefix, want1), noWrites),
			},
			{Config: prefixConfig(prefix, text, nil, doc(v1Reformatted)), ConfigPlanChecks: emptyPlan},
			// Drift: one key changed, one deleted. The refreshed document
			// holds exactly what etcd holds; the apply restores both.
			{
				PreConfig: func() {
					mustPut(t, prefix+"a", "changed outside")
					if _, err := testCluster.Client().Delete(etcdCtx(t), prefix+"b/c"); err != nil {
						t.Fatal(err)
					}
				},
				Config: prefixConfig(prefix, text, nil, doc(v1Reformatted)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
					priorDoc{"a": "changed outside", `quote"d`: "<&>"},
				}},
				Check: resource.ComposeAggregateTestCheckFunc(checkPrefix(prefix, want1), record),
			},
			// "t" moves from values into the document: nothing is written.
			{
				Config: prefixConfig(prefix, nil, nil, doc(`jsonencode({ a = "1", "b/c" = "2", "quote\"d" = "<&>", t = "text" })`)),
				Check:  resource.ComposeAggregateTestCheckFunc(checkPrefix(prefix, want1), noWrites),
			},
			// A change of one value, and a removed suffix.
			{
				Config: prefixConfig(prefix, nil, nil, doc(`jsonencode({ a = "one", "b/c" = "2", t = "text" })`)),
				Check:  checkPrefix(prefix, map[string]string{"a": "one", "b/c": "2", "t": "text"}),
			},
			{Config: prefixConfig(prefix, nil, nil, doc(`jsonencode({ a = "one", "b/c" = "2", t = "text" })`)), ConfigPlanChecks: emptyPlan},
		},
	})
}

// An import fills values (the import cannot see the configuration); with
// values_json in the configuration, the next apply moves the keys into the
// document and writes nothing.
func TestAccKeyPrefixResourceImportIntoValuesJSON(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	mustPut(t, prefix+"a", "1")
	last := mustPut(t, prefix+"b/c", "2").Header.Revision
	config := prefixConfig(prefix, nil, nil, `values_json = jsonencode({ a = "1", "b/c" = "2" })`)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{
				Config:             config,
				ResourceName:       prefixAddr,
				ImportState:        true,
				ImportStateId:      prefix,
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 || states[0].Attributes["values.%"] != "2" || states[0].Attributes["values.b/c"] != "2" {
						return fmt.Errorf("imported %v", states)
					}
					return nil
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(prefixAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkPrefix(prefix, map[string]string{"a": "1", "b/c": "2"}),
					func(*terraform.State) error {
						resp, err := testCluster.Client().Get(context.Background(), prefix, clientv3.WithPrefix())
						if err != nil {
							return err
						}
						for _, kv := range resp.Kvs {
							if kv.ModRevision > last {
								return fmt.Errorf("%s was written at %d after the import", kv.Key, kv.ModRevision)
							}
						}
						return nil
					},
				),
			},
			{Config: config, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
		},
	})
}
