package provider

// The configurations that the guide "Migrating from other etcd providers"
// gives for capabilities that Ferlab-Ste-Justine/etcd has as resource types
// of their own: mirroring a directory into a prefix and back, copying a
// prefix to another cluster, and clearing a key range at create and
// destroy.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A directory's files become the keys of a prefix, a deleted file's key
// goes, and reading the prefix back gives the files' contents by path.
func TestAccMigratingDirectoryMirror(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "alpha", "sub/b.json": `{"b":1}`})
	cfg := providerConfig() + fmt.Sprintf(`
resource "etcd_key_prefix" "dir" {
  prefix           = %[1]s
  values           = { for f in fileset(%[2]s, "**") : f => file("%[3]s/${f}") }
  delete_unmanaged = true
}

data "etcd_keys" "back" {
  prefix     = %[1]s
  depends_on = [etcd_key_prefix.dir]
}

output "files" {
  value = { for k in data.etcd_keys.back.keys : trimprefix(k.key, %[1]s) => k.value }
}
`, hclString(prefix), hclString(dir), dir)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				// A key under the prefix that no file backs is removed.
				PreConfig: func() { mustPut(t, prefix+"stale", "x") },
				Config:    cfg,
				Check:     checkPrefix(prefix, map[string]string{"a.txt": "alpha", "sub/b.json": `{"b":1}`}),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("files", knownvalue.MapExact(map[string]knownvalue.Check{
						"a.txt":      knownvalue.StringExact("alpha"),
						"sub/b.json": knownvalue.StringExact(`{"b":1}`),
					})),
				},
			},
			{
				PreConfig: func() {
					if err := os.Remove(filepath.Join(dir, "a.txt")); err != nil {
						t.Fatal(err)
					}
					writeFiles(t, dir, map[string]string{"c.txt": "gamma", "sub/b.json": `{"b":2}`})
				},
				Config: cfg,
				Check:  checkPrefix(prefix, map[string]string{"c.txt": "gamma", "sub/b.json": `{"b":2}`}),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("files", knownvalue.MapExact(map[string]knownvalue.Check{
						"c.txt":      knownvalue.StringExact("gamma"),
						"sub/b.json": knownvalue.StringExact(`{"b":2}`),
					})),
				},
			},
		},
		CheckDestroy: checkNoKeys(prefix),
	})
}

// A prefix of one cluster is copied to another through two provider
// aliases, and a change at the source shows up in the next plan. This runs
// the CLI on the provider binary: an in-process provider server is one
// instance for every alias, while the CLI starts one provider process per
// configuration.
func TestAccMigratingPrefixCopy(t *testing.T) {
	accCluster(t)
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if cli == "" {
		t.Skip("TF_ACC_TERRAFORM_PATH is not set: this test runs the CLI itself")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dst, err := testserver.New(ctx, testserver.WithMembers(1))
	if err != nil {
		t.Fatalf("start the destination cluster: %v", err)
	}
	t.Cleanup(func() { _ = dst.Close() })

	src := keyPrefix(t) + "src/"
	to := "/copy/"
	mustPut(t, src+"db/host", "10.0.0.5")
	mustPut(t, src+"db/port", "5432")
	w := newCLIWork(t, cli, map[string]string{"main.tf": fmt.Sprintf(`
terraform {
  required_providers {
    etcd = { source = "terraform-etcd/etcd" }
  }
}

provider "etcd" {
  alias     = "source"
  endpoints = %s
}

provider "etcd" {
  alias     = "destination"
  endpoints = %s
}

data "etcd_keys" "source" {
  provider = etcd.source
  prefix   = %s
}

resource "etcd_key_prefix" "copy" {
  provider         = etcd.destination
  prefix           = %s
  values           = { for k in data.etcd_keys.source.keys : trimprefix(k.key, %[3]s) => k.value }
  delete_unmanaged = true
}
`, hclList(testCluster.Endpoints()), hclList(dst.Endpoints()), hclString(src), hclString(to))})

	holds := func(want map[string]string) {
		t.Helper()
		got, err := prefixValues(dst, to)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("destination cluster holds under %q: %q, want %q", to, got, want)
		}
	}
	w.run(0, "apply", "-auto-approve")
	holds(map[string]string{"db/host": "10.0.0.5", "db/port": "5432"})
	w.run(0, "plan", "-detailed-exitcode")

	mustPut(t, src+"db/host", "10.0.0.6")
	w.run(2, "plan", "-detailed-exitcode")
	w.run(0, "apply", "-auto-approve")
	holds(map[string]string{"db/host": "10.0.0.6", "db/port": "5432"})

	w.run(0, "destroy", "-auto-approve")
	holds(map[string]string{})
	// The source is only read.
	if err := checkPrefix(src, map[string]string{"db/host": "10.0.0.6", "db/port": "5432"})(nil); err != nil {
		t.Error(err)
	}
}

// cliWork is a working directory in which a test runs the CLI on the
// provider binary (clusterBinary), found through dev_overrides under this
// provider's address and under the extra addresses given.
type cliWork struct {
	t      *testing.T
	cli    string
	dir    string
	config string
}

func newCLIWork(t *testing.T, cli string, files map[string]string, extraAddrs ...string) *cliWork {
	t.Helper()
	binDir := filepath.Dir(clusterBinary(t))
	var overrides strings.Builder
	for _, a := range append([]string{"registry.terraform.io/terraform-etcd/etcd", "registry.opentofu.org/terraform-etcd/etcd"}, extraAddrs...) {
		fmt.Fprintf(&overrides, "    %q = %q\n", a, binDir)
	}
	w := &cliWork{t: t, cli: cli, dir: t.TempDir()}
	w.config = writeTempFile(t, "dev.tfrc", fmt.Appendf(nil, "provider_installation {\n  dev_overrides {\n%s  }\n  direct {}\n}\n", overrides.String()))
	writeFiles(t, w.dir, files)
	return w
}

// run runs the CLI with args and fails the test unless it exits with want.
func (w *cliWork) run(want int, args ...string) string {
	w.t.Helper()
	cmd := exec.Command(w.cli, append(args, "-no-color")...)
	cmd.Dir = w.dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"TF_CLI_CONFIG_FILE=" + w.config,
		"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0",
	}
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			w.t.Fatalf("%s %s: %v", filepath.Base(w.cli), strings.Join(args, " "), err)
		}
		code = exit.ExitCode()
	}
	if code != want {
		w.t.Fatalf("%s %s exited %d, want %d:\n%s", filepath.Base(w.cli), strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

// prefixValues reads every key under prefix from c, by suffix.
func prefixValues(c *testserver.Cluster, prefix string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Client().Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)[len(prefix):]] = string(kv.Value)
	}
	return got, nil
}

// An etcd_key_prefix with no values and delete_unmanaged clears its prefix
// when created, and again when destroyed, including keys written after the
// last apply.
func TestAccMigratingClearRange(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	cfg := providerConfig() + fmt.Sprintf(`
resource "etcd_key_prefix" "scratch" {
  prefix           = %s
  values           = {}
  delete_unmanaged = true
}
`, hclString(prefix))
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					mustPut(t, prefix+"x", "1")
					mustPut(t, prefix+"y/z", "2")
				},
				Config: cfg,
				Check:  checkNoKeys(prefix),
			},
			{
				// Written after the last apply: destroy's refresh takes it
				// into the state, and destroy deletes it.
				PreConfig: func() { mustPut(t, prefix+"late", "3") },
				Config:    cfg,
				Destroy:   true,
			},
		},
		CheckDestroy: checkNoKeys(prefix),
	})
}

// A state written by Ferlab-Ste-Justine/etcd moves into this provider with
// moved blocks: the plan shows the moves and nothing else, the apply
// writes nothing to etcd, and the next plan is empty.
func TestAccMigratingMovedFromFerlab(t *testing.T) {
	accCluster(t)
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if cli == "" {
		t.Skip("TF_ACC_TERRAFORM_PATH is not set: this test runs the CLI itself")
	}
	version, err := exec.Command(cli, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	tofu := strings.HasPrefix(string(version), "OpenTofu")
	// Cross-provider moves: OpenTofu 1.10, Terraform 1.8.
	if (tofu && !cliAtLeast(string(version), 1, 10)) || (!tofu && !cliAtLeast(string(version), 1, 8)) {
		t.Skipf("%s cannot move resources across providers (OpenTofu 1.10, Terraform 1.8)", strings.SplitN(string(version), "\n", 2)[0])
	}
	host := "registry.terraform.io"
	if tofu {
		host = "registry.opentofu.org"
	}
	ferlab := host + "/ferlab-ste-justine/etcd"

	p := keyPrefix(t)
	role, user := "ferlab-role-"+t.Name(), "ferlab-user-"+t.Name()
	// What Ferlab's provider wrote.
	keyRev := mustPut(t, p+"config", `{"a":1}`).Header.Revision
	mustPut(t, p+"prefix/a", "1")
	mustPut(t, p+"prefix/b/c", "2")
	ctx := etcdCtx(t)
	cl := testCluster.Client()
	if _, err := cl.RoleAdd(ctx, role); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RoleGrantPermission(ctx, role, p, clientv3.GetPrefixRangeEnd(p), clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UserAdd(ctx, user, "Ferlab-pw-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UserGrantRole(ctx, user, role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = cl.UserDelete(ctx, user)
		_, _ = cl.RoleDelete(ctx, role)
		_, _ = cl.Delete(ctx, p, clientv3.WithPrefix())
	})

	instance := func(typ, name, attrs string) string {
		return fmt.Sprintf(`{"mode":"managed","type":%q,"name":%q,"provider":"provider[\"%s\"]","instances":[{"schema_version":0,"attributes":%s,"sensitive_attributes":[],"private":"bnVsbA=="}]}`,
			typ, name, ferlab, attrs)
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	state := fmt.Sprintf(`{"version":4,"terraform_version":"1.5.7","serial":3,"lineage":"8a2b7c56-1f4e-4c1a-9d2e-3b5f6a7c8d9e","outputs":{},"resources":[%s]}`,
		strings.Join([]string{
			instance("etcd_key", "config", fmt.Sprintf(`{"clear_on_deletion":true,"id":%s,"key":%s,"value":"{\"a\":1}"}`, q(p+"config"), q(p+"config"))),
			instance("etcd_key_prefix", "prefix", fmt.Sprintf(`{"clear_on_deletion":true,"id":%s,"keys":[{"key":"a","value":"1"},{"key":"b/c","value":"2"}],"prefix":%s}`, q(p+"prefix/"), q(p+"prefix/"))),
			instance("etcd_role", "app", fmt.Sprintf(`{"id":%s,"name":%s,"permissions":[{"key":%s,"permission":"readwrite","range_end":%s}]}`, q(role), q(role), q(p), q(clientv3.GetPrefixRangeEnd(p)))),
			instance("etcd_user", "app", fmt.Sprintf(`{"id":%s,"password":"Ferlab-pw-1","roles":[%s],"username":%s}`, q(user), q(role), q(user))),
		}, ","))

	w := newCLIWork(t, cli, map[string]string{
		"terraform.tfstate": state,
		"main.tf": fmt.Sprintf(`
terraform {
  required_providers {
    etcd   = { source = "terraform-etcd/etcd" }
    ferlab = { source = "ferlab-ste-justine/etcd" }
  }
}

provider "etcd" {
  endpoints = %s
}

resource "etcd_key" "app_config" {
  key   = %s
  value = jsonencode({ a = 1 })
}

moved {
  from = etcd_key.config
  to   = etcd_key.app_config
}

resource "etcd_key_prefix" "moved_prefix" {
  prefix           = %s
  values           = { "a" = "1", "b/c" = "2" }
  delete_unmanaged = true
}

moved {
  from = etcd_key_prefix.prefix
  to   = etcd_key_prefix.moved_prefix
}

resource "etcd_role" "moved_app" {
  name        = %s
  permissions = [{ key = %s, prefix = true, access = "readwrite" }]
}

moved {
  from = etcd_role.app
  to   = etcd_role.moved_app
}

resource "etcd_user" "moved_app" {
  name     = %s
  password = "Ferlab-pw-1"
  roles    = [etcd_role.moved_app.name]
}

moved {
  from = etcd_user.app
  to   = etcd_user.moved_app
}
`, hclList(testCluster.Endpoints()), hclString(p+"config"), hclString(p+"prefix/"), hclString(role), hclString(p), hclString(user)),
	}, ferlab)

	// Moves are changes to the state (exit code 2), and the only ones.
	plan := w.run(2, "plan", "-detailed-exitcode")
	for _, want := range []string{
		"etcd_key.config has moved to etcd_key.app_config",
		"etcd_key_prefix.prefix has moved to etcd_key_prefix.moved_prefix",
		"etcd_role.app has moved to etcd_role.moved_app",
		"etcd_user.app has moved to etcd_user.moved_app",
		"0 to add, 0 to change, 0 to destroy",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("the plan does not say %q:\n%s", want, plan)
		}
	}
	w.run(0, "apply", "-auto-approve")
	list := w.run(0, "state", "list")
	for _, addr := range []string{"etcd_key.app_config", "etcd_key_prefix.moved_prefix", "etcd_role.moved_app", "etcd_user.moved_app"} {
		if !strings.Contains(list, addr) {
			t.Errorf("state list has no %s:\n%s", addr, list)
		}
	}
	w.run(0, "plan", "-detailed-exitcode")
	// Moving wrote nothing.
	resp, err := cl.Get(ctx, p+"config")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision != keyRev {
		t.Errorf("the key was written by the move: %v, want mod_revision %d", resp.Kvs, keyRev)
	}
}
