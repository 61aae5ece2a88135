package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

const authAddr = "etcd_auth.this"

// authStack is the documented order for one apply: root user, then
// etcd_auth depending on it, then everything else depending on etcd_auth.
// rootPassword "" makes root a certificate-only user.
func authStack(rootPassword string) string {
	rootAuth := "password = " + hclString(rootPassword)
	if rootPassword == "" {
		rootAuth = "no_password = true"
	}
	return `
resource "etcd_user" "root" {
  name  = "root"
  ` + rootAuth + `
  roles = ["root"]
}

resource "etcd_auth" "this" {
  depends_on = [etcd_user.root]
}

resource "etcd_role" "app" {
  name        = "app"
  permissions = [{ key = "/app/", prefix = true, access = "readwrite" }]
  depends_on  = [etcd_auth.this]
}

resource "etcd_user" "app" {
  name       = "app"
  password   = "app-pw"
  roles      = [etcd_role.app.name]
  depends_on = [etcd_auth.this]
}

resource "etcd_key" "app" {
  key        = "/app/config"
  value      = "written after auth"
  depends_on = [etcd_auth.this]
}

data "etcd_auth_status" "this" {
  depends_on = [etcd_auth.this]
}
`
}

// checkAuthEnabled asks etcd whether authentication is on.
func checkAuthEnabled(cli func() *clientv3.Client, want bool) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := cli().AuthStatus(ctx)
		if err != nil {
			return err
		}
		if st.Enabled != want {
			return fmt.Errorf("auth enabled = %t, want %t", st.Enabled, want)
		}
		return nil
	}
}

func checkKey(cli func() *clientv3.Client, key, want string) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli().Get(ctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != want {
			return fmt.Errorf("key %q: etcd holds %v, want %q", key, resp.Kvs, want)
		}
		return nil
	}
}

// One apply creates root, enables auth, then creates a role, a user and a
// key through the same provider process; destroy undoes it in reverse.
func TestAccAuthResourceSameApply(t *testing.T) {
	c := startCluster(t)
	const rootPW = "root-pw-from-config"
	// Opened before auth is on with root's future credentials, like the
	// provider: clientv3 authenticates once the server asks for it.
	root := rawClient(t, c, "root", rootPW)
	etcd := func() *clientv3.Client { return root }
	config := rootProvider(c, rootPW) + authStack(rootPW)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkAuthEnabled(etcd, false),
			checkGone(etcd, []string{"app"}, []string{"root", "app"}),
			checkNoKeysIn(etcd, "/app/"),
		),
		Steps: []resource.TestStep{
			// Refused, with what to create, while there is no root user.
			{
				Config:      rootProvider(c, rootPW) + "resource \"etcd_auth\" \"this\" {}\n",
				ExpectError: errorText(`No user "root" exists, and etcd requires one holding the role "root"`),
				Check:       checkAuthEnabled(etcd, false),
			},
			// Refused while the provider itself has no credentials.
			{
				Config: clusterProvider(c) + `
resource "etcd_user" "root" {
  name     = "root"
  password = "` + rootPW + `"
  roles    = ["root"]
}
resource "etcd_auth" "this" {
  depends_on = [etcd_user.root]
}
`,
				ExpectError: errorText("The provider connects without a username or client certificate"),
			},
			// The whole stack in one apply.
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(authAddr, tfjsonpath.New("id"), knownvalue.StringExact("auth")),
					statecheck.ExpectKnownValue(authAddr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.etcd_auth_status.this", tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("data.etcd_auth_status.this", tfjsonpath.New("auth_revision"), knownvalue.NotNull()),
				},
				Check: resource.ComposeTestCheckFunc(
					checkAuthEnabled(etcd, true),
					checkRole(etcd, "app", permStr("readwrite", "/app/", "/app0")),
					checkUserRoles(etcd, "app", "app"),
					checkUserRoles(etcd, "root", "root"),
					checkKey(etcd, "/app/config", "written after auth"),
					checkAuthenticates(c, "app", "app-pw", true),
				),
			},
			{
				ResourceName:      authAddr,
				ImportState:       true,
				ImportStateId:     "auth",
				ImportStateVerify: true,
			},
			// Read verifies root's and app's passwords now that auth is on:
			// they match, so the plan is empty.
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// Drift: auth disabled outside Terraform is turned on again.
			{
				PreConfig: func() {
					if _, err := root.AuthDisable(etcdCtx(t)); err != nil {
						t.Fatal(err)
					}
				},
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(authAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(authAddr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
				}},
				Check: checkAuthEnabled(etcd, true),
			},
		},
	})
}

func checkNoKeysIn(cli func() *clientv3.Client, prefix string) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count != 0 {
			return fmt.Errorf("%d keys left under %q", resp.Count, prefix)
		}
		return nil
	}
}

// The same stack with TLS client certificate authentication: the provider
// has no user name, its certificate's common name (root) is its identity,
// and root has no password at all.
func TestAccAuthResourceClientCertificate(t *testing.T) {
	c := startCluster(t, testserver.WithTLS())
	info := c.TLS()
	root := rawClient(t, c, "", "") // the cluster's root certificate
	etcd := func() *clientv3.Client { return root }
	config := clusterProvider(c, "cert = "+hclString(info.CertFile), "key = "+hclString(info.KeyFile)) + authStack("") + `
data "etcd_role" "app" {
  name       = etcd_role.app.name
}
data "etcd_user" "app" {
  name = etcd_user.app.name
}
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkAuthEnabled(etcd, false),
			checkGone(etcd, []string{"app"}, []string{"root", "app"}),
		),
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.etcd_user.app", tfjsonpath.New("roles"), knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact("app")})),
					statecheck.ExpectKnownValue("data.etcd_role.app", tfjsonpath.New("permissions"), knownvalue.SetExact([]knownvalue.Check{
						permCheck("/app/", nil, ptr(true), "readwrite"),
					})),
				},
				Check: resource.ComposeTestCheckFunc(
					checkAuthEnabled(etcd, true),
					checkKey(etcd, "/app/config", "written after auth"),
					checkUserRoles(etcd, "root", "root"),
				),
			},
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// A cluster started with TLS and auth: the provider authenticates with a
// client certificate alone (CN = user), as root to manage RBAC and keys, and
// as an ordinary user limited by its role. (One provider configuration per
// test case: see TestAccUserResourcePermissionDenied.)
func TestAccAuthClientCertificateUsers(t *testing.T) {
	c := startCluster(t, testserver.WithTLS(), testserver.WithAuth())
	info := c.TLS()
	root := rawClient(t, c, "", "") // the cluster's root certificate
	etcd := func() *clientv3.Client { return root }
	certProvider := func(certPEM, keyPEM []byte) string {
		return clusterProvider(c, "cert = "+hclString(string(certPEM)), "key = "+hclString(string(keyPEM)))
	}

	t.Run("root", func(t *testing.T) {
		config := certProvider(info.CertPEM, info.KeyPEM) + `
resource "etcd_role" "certapp" {
  name        = "certapp"
  permissions = [{ key = "/certapp/", prefix = true, access = "readwrite" }]
}
resource "etcd_user" "certapp" {
  name        = "certapp"
  no_password = true
  roles       = [etcd_role.certapp.name]
}
resource "etcd_key" "seed" {
  key   = "/certapp/seed"
  value = "by root certificate"
}
data "etcd_auth_status" "this" {}
`
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProviders,
			CheckDestroy: resource.ComposeTestCheckFunc(
				checkGone(etcd, []string{"certapp"}, []string{"certapp"}),
				checkNoKeysIn(etcd, "/certapp/"),
			),
			Steps: []resource.TestStep{
				{
					Config: config,
					ConfigStateChecks: []statecheck.StateCheck{
						statecheck.ExpectKnownValue("data.etcd_auth_status.this", tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					},
					Check: resource.ComposeTestCheckFunc(
						checkUserRoles(etcd, "certapp", "certapp"),
						checkRole(etcd, "certapp", permStr("readwrite", "/certapp/", "/certapp0")),
						checkKey(etcd, "/certapp/seed", "by root certificate"),
					),
				},
				{
					ResourceName:            "etcd_user.certapp",
					ImportState:             true,
					ImportStateId:           "certapp",
					ImportStateVerify:       true,
					ImportStateVerifyIgnore: []string{"no_password"},
				},
				{
					Config:           config,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				},
			},
		})
	})

	t.Run("limited user", func(t *testing.T) {
		ctx := etcdCtx(t)
		for _, err := range []error{
			second(root.RoleAdd(ctx, "certapp")),
			second(root.RoleGrantPermission(ctx, "certapp", "/certapp/", "/certapp0", clientv3.PermissionType(clientv3.PermReadWrite))),
			second(root.UserAddWithOptions(ctx, "certapp", "", &clientv3.UserAddOptions{NoPassword: true})),
			second(root.UserGrantRole(ctx, "certapp", "certapp")),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		appCert, appKey, err := c.IssueClientCert("certapp")
		if err != nil {
			t.Fatal(err)
		}
		config := certProvider(appCert, appKey)
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProviders,
			CheckDestroy:             checkNoKeysIn(etcd, "/certapp/"),
			Steps: []resource.TestStep{
				{
					Config: config + `
resource "etcd_key" "mine" {
  key   = "/certapp/k"
  value = "by certificate"
}
`,
					Check: checkKey(etcd, "/certapp/k", "by certificate"),
				},
				{
					Config: config + `
resource "etcd_key" "other" {
  key   = "/elsewhere"
  value = "v"
}
`,
					ExpectError: errorText(`etcd permission denied: etcd user "certapp" (the common name of the client certificate) has no role that grants this on key "/elsewhere"`),
				},
			},
		})
	})
}

func TestAccAuthResourceInvalid(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	_, rootPW := c.RootCredentials()
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      rootProvider(c, rootPW) + "resource \"etcd_auth\" \"this\" {\n  enabled = false\n}\n",
				ExpectError: errorText("To turn it off, remove the etcd_auth resource"),
			},
			{
				// Enabled outside Terraform: not taken over on create.
				Config:      rootProvider(c, rootPW) + "resource \"etcd_auth\" \"this\" {}\n",
				ExpectError: errorText("Authentication is already enabled on this cluster"),
			},
			{
				Config:        rootProvider(c, rootPW) + "resource \"etcd_auth\" \"this\" {}\n",
				ResourceName:  authAddr,
				ImportState:   true,
				ImportStateId: "on",
				ExpectError:   errorText(`import it with the ID "auth"`),
			},
		},
	})
}

// At TF_LOG=TRACE, the output of a real CLI running the real provider
// binary holds no password and no private key: apply, a refresh that
// checks passwords, destroy, and a failed login with a wrong password
// (whose error names the user, not the password).
func TestAccAuthTraceLogHasNoSecrets(t *testing.T) {
	c := startCluster(t, testserver.WithTLS(), testserver.WithAuth())
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if cli == "" {
		t.Skip("TF_ACC_TERRAFORM_PATH is not set: this test runs the CLI itself")
	}
	info := c.TLS()
	_, rootPW := c.RootCredentials()
	const userPW, woPW, wrongPW = "Trace-user-pw-3317", "Trace-wo-pw-8802", "Trace-wrong-pw-4471"
	// The write-only and ephemeral paths of etcd_key and etcd_key_prefix.
	const keyWO, keyB64WO, prefixWO, ephemeralSecret = "Trace-key-wo-6120", "Trace-key-b64-wo-7231", "Trace-prefix-wo-8342", "Trace-ephemeral-9453"

	// The provider binary, as a user installs it, found through dev_overrides.
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "terraform-provider-etcd"), ".")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cliConfig := writeTempFile(t, "dev.tfrc", fmt.Appendf(nil, `provider_installation {
  dev_overrides {
    "registry.terraform.io/terraform-etcd/etcd"  = %q
    "registry.opentofu.org/terraform-etcd/etcd" = %q
  }
  direct {}
}
`, binDir, binDir))

	version, err := exec.Command(cli, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	writeOnly := cliAtLeast(string(version), 1, 11)

	provider := func(password string) string {
		return fmt.Sprintf(`terraform {
  required_providers {
    etcd = { source = "terraform-etcd/etcd" }
  }
}
provider "etcd" {
  endpoints = %s
  ca_cert   = %s
  cert      = %s
  key       = %s
  username  = "root"
  password  = %s
}
`, hclList(c.Endpoints()), hclString(string(info.CACertPEM)), hclString(string(info.CertPEM)), hclString(string(info.KeyPEM)), hclString(password))
	}
	resources := `
resource "etcd_role" "app" {
  name        = "trace-app"
  permissions = [{ key = "/trace/", prefix = true, access = "read" }]
}
resource "etcd_user" "app" {
  name     = "trace-user"
  password = "` + userPW + `"
  roles    = [etcd_role.app.name]
}
resource "etcd_key" "k" {
  key   = "/trace/k"
  value = "v"
}
`
	if writeOnly {
		resources += `
resource "etcd_user" "wo" {
  name                = "trace-wo"
  password_wo         = "` + woPW + `"
  password_wo_version = 1
}
resource "etcd_key" "wo" {
  key              = "/trace/wo"
  value_wo         = "` + keyWO + `"
  value_wo_version = 1
}
resource "etcd_key" "b64wo" {
  key              = "/trace/b64wo"
  value_base64_wo  = "` + base64.StdEncoding.EncodeToString([]byte(keyB64WO)) + `"
  value_wo_version = 1
}
resource "etcd_key_prefix" "wo" {
  prefix            = "/trace/prefix/"
  values            = { plain = "p" }
  values_wo         = { secret = "` + prefixWO + `" }
  values_wo_version = 1
}
ephemeral "etcd_key" "src" {
  key = "/trace-source/secret"
}
resource "etcd_key" "copy" {
  key              = "/trace/copy"
  value_wo         = ephemeral.etcd_key.src.value
  value_wo_version = 1
}
`
		root := rawClient(t, c, "root", rootPW)
		if _, err := root.Put(etcdCtx(t), "/trace-source/secret", ephemeralSecret); err != nil {
			t.Fatal(err)
		}
	}

	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(cli, args...)
		cmd.Dir = dir
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
			"TF_LOG=TRACE", "TF_CLI_CONFIG_FILE=" + cliConfig,
			"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0",
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(provider(rootPW)+resources), 0o600); err != nil {
		t.Fatal(err)
	}
	stateSecrets := []string{userPW}
	if writeOnly {
		stateSecrets = append(stateSecrets, woPW, keyWO, keyB64WO, prefixWO, ephemeralSecret)
	}
	var logs []string
	for _, args := range [][]string{
		{"apply", "-auto-approve", "-no-color"},
		{"plan", "-detailed-exitcode", "-no-color"}, // refresh: passwords and write-only HMACs are checked
		{"destroy", "-auto-approve", "-no-color"},
	} {
		out, err := run(work, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(cli), args[0], err, tail(out, 4000))
		}
		logs = append(logs, out)
		if args[0] == "apply" && writeOnly {
			// The state files, private data decoded, hold no write-only or
			// ephemeral value, nor a plain hash of one. (userPW is in the
			// state by design: password is a stored, sensitive argument.)
			if err := checkStateFilesFree(work, "trace-wo", stateSecrets[1:]...)(nil); err != nil {
				t.Error(err)
			}
		}
	}

	// A wrong password: the error names the user and never the password.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "main.tf"), []byte(provider(wrongPW)+"data \"etcd_auth_status\" \"this\" {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(bad, "plan", "-no-color")
	if err == nil {
		t.Fatalf("plan with a wrong password succeeded:\n%s", tail(out, 4000))
	}
	if !errorText(`etcd authentication failed for user "root"`).MatchString(out) {
		t.Fatalf("plan with a wrong password: the error does not name the user:\n%s", tail(out, 4000))
	}
	logs = append(logs, out)

	all := strings.Join(logs, "\n")
	// The capture is real: TRACE lines from the CLI and the provider's own
	// debug logs are there.
	for _, want := range []string{"[TRACE]", "etcd provider configured", "trace-user"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the captured output (%d bytes) lacks %q: TF_LOG=TRACE output was not captured", len(all), want)
		}
	}
	secrets := map[string]string{"root password": rootPW, "user password": userPW, "wrong password": wrongPW}
	if writeOnly {
		secrets["write-only password"] = woPW
		secrets["etcd_key value_wo"] = keyWO
		secrets["etcd_key value_base64_wo"] = keyB64WO
		secrets["etcd_key value_base64_wo, encoded"] = base64.StdEncoding.EncodeToString([]byte(keyB64WO))
		secrets["etcd_key_prefix values_wo"] = prefixWO
		secrets["ephemeral etcd_key value"] = ephemeralSecret
	}
	for i, line := range pemBody(info.KeyPEM) {
		secrets[fmt.Sprintf("private key line %d", i+1)] = line
	}
	for what, s := range secrets {
		if i := strings.Index(all, s); i >= 0 {
			t.Errorf("the TF_LOG=TRACE output holds the %s: ...%s...", what, all[max(0, i-200):i])
		}
	}
	t.Logf("%s: %d bytes of TF_LOG=TRACE output checked for %d secrets (write-only: %t)", strings.SplitN(string(version), "\n", 2)[0], len(all), len(secrets), writeOnly)
}

// pemBody returns the base64 lines of a PEM block, the key material itself.
func pemBody(p []byte) []string {
	var out []string
	for _, l := range strings.Split(string(p), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// cliAtLeast reads "Terraform v1.5.7" / "OpenTofu v1.12.6" version output.
func cliAtLeast(version string, major, minor int) bool {
	m := regexp.MustCompile(`v(\d+)\.(\d+)\.`).FindStringSubmatch(version)
	if m == nil {
		return false
	}
	maj, _ := strconv.Atoi(m[1])
	mnr, _ := strconv.Atoi(m[2])
	return maj > major || maj == major && mnr >= minor
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// The documentation example: the whole stack in one apply on a cluster
// without auth, and back on destroy.
func TestAccAuthResourceExample(t *testing.T) {
	c := startCluster(t)
	const rootPW = "example-root-pw"
	root := rawClient(t, c, "root", rootPW)
	etcd := func() *clientv3.Client { return root }
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	vars := config.Variables{
		"etcd_root_password": config.StringVariable(rootPW),
		"app_password":       config.StringVariable("example-app-pw"),
	}
	dir := config.StaticDirectory("../../examples/resources/etcd_auth")
	resource.Test(t, resource.TestCase{
		CheckDestroy: resource.ComposeTestCheckFunc(
			checkAuthEnabled(etcd, false),
			checkGone(etcd, []string{"app"}, []string{"root", "app"}),
			checkNoKeysIn(etcd, "/app/"),
		),
		Steps: []resource.TestStep{
			{
				// The example has a provider block, so the providers go here.
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          dir,
				ConfigVariables:          vars,
				Check: resource.ComposeTestCheckFunc(
					checkAuthEnabled(etcd, true),
					checkKey(etcd, "/app/config", `{"log_level":"info"}`),
					checkAuthenticates(c, "app", "example-app-pw", true),
				),
			},
			{
				ProtoV6ProviderFactories: testAccProviders,
				ConfigDirectory:          dir,
				ConfigVariables:          vars,
				ConfigPlanChecks:         resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}
