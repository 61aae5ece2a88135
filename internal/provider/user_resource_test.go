package provider

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/bcrypt"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

const userAddr = "etcd_user.test"

// userConfig is an etcd_user "test" with extra attribute lines.
func userConfig(name string, lines ...string) string {
	return fmt.Sprintf("resource \"etcd_user\" \"test\" {\n  name = %s\n  %s\n}\n", hclString(name), strings.Join(lines, "\n  "))
}

func namedRole(res, name string) string {
	return fmt.Sprintf("resource \"etcd_role\" %q {\n  name = %s\n}\n", res, hclString(name))
}

func TestAccUserResourceLifecycle(t *testing.T) {
	accCluster(t)
	user, roleA, roleB := rbacName(t, "u"), rbacName(t, "a"), rbacName(t, "b")
	config := func(roles, password string) string {
		return providerConfig() + namedRole("a", roleA) + namedRole("b", roleB) +
			userConfig(user, "roles = "+roles, "password = "+hclString(password))
	}
	roles := tfjsonpath.New("roles")

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkGone(sharedEtcd, []string{roleA, roleB}, []string{user}),
		Steps: []resource.TestStep{
			// 1. Create.
			{
				Config: config("[etcd_role.a.name]", "pw-1"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(userAddr, tfjsonpath.New("id"), knownvalue.StringExact(user)),
					statecheck.ExpectKnownValue(userAddr, roles, knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(roleA)})),
					statecheck.ExpectSensitiveValue(userAddr, tfjsonpath.New("password")),
				},
				Check: checkUserRoles(sharedEtcd, user, roleA),
			},
			// 2. Import by name: etcd never reveals the password.
			{
				ResourceName:            userAddr,
				ImportState:             true,
				ImportStateId:           user,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password"},
			},
			// 3. Update roles and password, in place.
			{
				Config: config("[etcd_role.b.name]", "pw-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(userAddr, roles, knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(roleB)})),
				},
				Check: checkUserRoles(sharedEtcd, user, roleB),
			},
			// 4. Nothing changed: empty plan.
			{
				Config:           config("[etcd_role.b.name]", "pw-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// 5. Drift: a role granted and one revoked with clientv3 show as
			// an update; apply restores the declared roles.
			{
				PreConfig: func() {
					ctx := etcdCtx(t)
					if _, err := sharedEtcd().UserGrantRole(ctx, user, roleA); err != nil {
						t.Fatal(err)
					}
					if _, err := sharedEtcd().UserRevokeRole(ctx, user, roleB); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("[etcd_role.b.name]", "pw-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(userAddr, roles, knownvalue.SetExact([]knownvalue.Check{knownvalue.StringExact(roleB)})),
				}},
				Check: checkUserRoles(sharedEtcd, user, roleB),
			},
			// 6. Deleted outside Terraform: planned for creation again.
			{
				PreConfig: func() {
					if _, err := sharedEtcd().UserDelete(etcdCtx(t), user); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("[etcd_role.b.name]", "pw-2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionCreate),
				}},
				Check: checkUserRoles(sharedEtcd, user, roleB),
			},
			// 7. Destroy: CheckDestroy asks etcd.
		},
	})
}

func TestAccUserResourceInvalid(t *testing.T) {
	accCluster(t)
	user, taken := rbacName(t, "u"), rbacName(t, "taken")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkGone(sharedEtcd, nil, []string{user}),
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + userConfig(user, `password = "x"`, "no_password = true"),
				ExpectError: errorText("password and no_password = true are both set; set one"),
			},
			{
				Config:      providerConfig() + userConfig(user),
				ExpectError: errorText("A new etcd user needs a password"),
			},
			{
				Config:      providerConfig() + userConfig(user, `password = ""`),
				ExpectError: errorText("string length must be at least 1"),
			},
			{
				Config:      providerConfig() + userConfig("a\tb", `password = "x"`),
				ExpectError: errorText("contains control characters"),
			},
			{
				Config:      providerConfig() + userConfig(user, "password_wo_version = 1", "no_password = true"),
				ExpectError: errorText("password_wo_version is set but password_wo is not"),
			},
			{
				// A missing role: the user is created, the grant fails and the
				// error says what to do; Terraform records the user (tainted).
				Config:      providerConfig() + userConfig(user, `password = "x"`, `roles = ["no-such-role"]`),
				ExpectError: errorText(`grant role "no-such-role" to user ` + fmt.Sprintf("%q", user) + `: role not found; create the role first`),
			},
			{
				PreConfig: func() {
					if _, err := sharedEtcd().UserAdd(etcdCtx(t), taken, "pw"); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _, _ = sharedEtcd().UserDelete(etcdCtx(t), taken) })
				},
				Config:      providerConfig() + userConfig(taken, `password = "x"`),
				ExpectError: errorText(fmt.Sprintf("The user %q already exists in etcd", taken)),
			},
		},
	})
}

// With authentication enabled passwords are checked: a password changed
// outside Terraform shows as drift; no_password replaces the user.
func TestAccUserResourcePasswords(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	_, rootPW := c.RootCredentials()
	root := rawClient(t, c, "root", rootPW)
	etcd := func() *clientv3.Client { return root }
	const user = "alice"
	config := func(lines ...string) string { return rootProvider(c, rootPW) + userConfig(user, lines...) }

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkGone(etcd, nil, []string{user}),
		Steps: []resource.TestStep{
			{
				Config: config(`password = "first-pw"`, `roles = ["root"]`),
				Check: resource.ComposeTestCheckFunc(
					checkAuthenticates(c, user, "first-pw", true),
					checkUserRoles(etcd, user, "root"),
				),
			},
			{
				ResourceName:            userAddr,
				ImportState:             true,
				ImportStateId:           user,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password"},
			},
			// The password is changed outside Terraform: Read finds that etcd
			// rejects the one in state, the plan shows it, apply sets it.
			{
				PreConfig: func() {
					if _, err := root.UserChangePassword(etcdCtx(t), user, "changed-outside"); err != nil {
						t.Fatal(err)
					}
				},
				Config: config(`password = "first-pw"`, `roles = ["root"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkAuthenticates(c, user, "first-pw", true),
					checkAuthenticates(c, user, "changed-outside", false),
				),
			},
			{
				Config:           config(`password = "first-pw"`, `roles = ["root"]`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// Rotation in place.
			{
				Config: config(`password = "second-pw"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkAuthenticates(c, user, "second-pw", true),
					checkAuthenticates(c, user, "first-pw", false),
					checkUserRoles(etcd, user),
				),
			},
			// etcd fixes "no password" at creation: the user is replaced.
			{
				Config: config("no_password = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionReplace),
				}},
				Check: checkAuthenticates(c, user, "second-pw", false),
			},
			{
				Config: config(`password = "third-pw"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionReplace),
				}},
				Check: checkAuthenticates(c, user, "third-pw", true),
			},
		},
	})
}

// An imported user has no password in state; configuring one and applying
// sets it (the documented way to take over a user's password).
func TestAccUserResourceImportThenSetPassword(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	_, rootPW := c.RootCredentials()
	root := rawClient(t, c, "root", rootPW)
	const user = "legacy"
	if _, err := root.UserAdd(etcdCtx(t), user, "unknown-old-pw"); err != nil {
		t.Fatal(err)
	}
	config := rootProvider(c, rootPW) + userConfig(user, `password = "taken-over-pw"`)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:             config,
				ResourceName:       userAddr,
				ImportState:        true,
				ImportStateId:      user,
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 {
						return fmt.Errorf("imported %d instances", len(states))
					}
					if pw := states[0].Attributes["password"]; pw != "" {
						return fmt.Errorf("imported state holds a password")
					}
					return nil
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkAuthenticates(c, user, "taken-over-pw", true),
					checkAuthenticates(c, user, "unknown-old-pw", false),
				),
			},
			{
				Config:           config,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// password_wo is sent to etcd and never stored: the test reads the state
// files Terraform wrote and looks for the password and for common hashes
// of it.
func TestAccUserResourcePasswordWriteOnly(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	_, rootPW := c.RootCredentials()
	const user = "wo-user"
	const pw1, pw2, pw3 = "Wo-Secret-one-7731", "Wo-Secret-two-9142", "Wo-Secret-three-5520"
	workDir := t.TempDir()
	config := func(pw string, version int) string {
		return rootProvider(c, rootPW) + userConfig(user, "password_wo = "+hclString(pw), fmt.Sprintf("password_wo_version = %d", version))
	}

	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		WorkingDir:               workDir,
		Steps: []resource.TestStep{
			{
				Config:      rootProvider(c, rootPW) + userConfig(user, `password_wo = "x"`),
				ExpectError: errorText("Set password_wo_version"),
			},
			{
				Config: config(pw1, 1),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(userAddr, tfjsonpath.New("password_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue(userAddr, tfjsonpath.New("password"), knownvalue.Null()),
					statecheck.ExpectKnownValue(userAddr, tfjsonpath.New("password_wo_version"), knownvalue.Int64Exact(1)),
				},
				Check: resource.ComposeTestCheckFunc(
					checkAuthenticates(c, user, pw1, true),
					checkStateFilesFree(workDir, user, pw1),
				),
			},
			{
				ResourceName:            userAddr,
				ImportState:             true,
				ImportStateId:           user,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"password_wo_version"},
			},
			// Bumping the version rotates the password.
			{
				Config: config(pw2, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(userAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkAuthenticates(c, user, pw2, true),
					checkAuthenticates(c, user, pw1, false),
					checkStateFilesFree(workDir, user, pw1, pw2),
				),
			},
			// A new value without a new version is invisible to the provider,
			// as documented: no change is planned.
			{
				Config:           config(pw3, 2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				Check:            checkAuthenticates(c, user, pw2, true),
			},
		},
	})
}

// checkStateFilesFree reads every terraform.tfstate* file under dir (the
// test's working directory) and fails when one holds a secret, or a hex or
// base64 MD5/SHA-1/SHA-256/SHA-512 digest of it, or a bcrypt hash of it.
// The user name must appear, so that the check cannot pass on a file that
// holds nothing.
func checkStateFilesFree(dir, user string, secrets ...string) func(*terraform.State) error {
	bcryptHash := regexp.MustCompile(`\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}`)
	return func(*terraform.State) error {
		var files []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".terraform" {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasPrefix(d.Name(), "terraform.tfstate") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("no state file under %s", dir)
		}
		sawUser := false
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			content := withDecodedBase64(string(b), 4)
			sawUser = sawUser || strings.Contains(content, fmt.Sprintf("%q", user))
			for _, s := range secrets {
				for form, v := range secretForms(s) {
					if strings.Contains(strings.ToLower(content), strings.ToLower(v)) {
						return fmt.Errorf("%s holds the write-only password (%s)", f, form)
					}
				}
				for _, h := range bcryptHash.FindAllString(content, -1) {
					if bcrypt.CompareHashAndPassword([]byte(h), []byte(s)) == nil {
						return fmt.Errorf("%s holds a bcrypt hash of the write-only password", f)
					}
				}
			}
		}
		if !sawUser {
			return fmt.Errorf("the state files %q do not mention user %q: not the state of this test", files, user)
		}
		return nil
	}
}

// withDecodedBase64 appends to s what its base64 strings decode to, as text
// and as hex, depth levels deep: a resource's private state is base64 in the
// state file, and holds JSON whose []byte values are base64 again, so a
// plain hash kept there is visible only once decoded.
func withDecodedBase64(s string, depth int) string {
	token := regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`)
	var out strings.Builder
	out.WriteString(s)
	for _, t := range token.FindAllString(s, -1) {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			continue
		}
		out.WriteString("\n" + hex.EncodeToString(b) + "\n")
		if depth > 1 {
			out.WriteString(withDecodedBase64(string(b), depth-1))
		} else {
			out.Write(b)
		}
	}
	return out.String()
}

// secretForms lists s and digests of it in the encodings a state file could
// hold them in.
func secretForms(s string) map[string]string {
	forms := map[string]string{"plain text": s, "base64": base64.StdEncoding.EncodeToString([]byte(s))}
	sums := map[string][]byte{}
	m, s1, s256, s512 := md5.Sum([]byte(s)), sha1.Sum([]byte(s)), sha256.Sum256([]byte(s)), sha512.Sum512([]byte(s))
	sums["md5"], sums["sha1"], sums["sha256"], sums["sha512"] = m[:], s1[:], s256[:], s512[:]
	for name, sum := range sums {
		forms[name+" hex"] = hex.EncodeToString(sum)
		forms[name+" base64"] = base64.StdEncoding.EncodeToString(sum)
	}
	return forms
}

// A user limited to reading /app/ is refused a write through the provider,
// with a diagnostic that says "permission denied" and names the key; a
// wrong password names the user.
//
// The limited user and its role are made with clientv3 beforehand, so that
// each configuration has one provider block: the in-process provider that
// plugin-testing serves is one server for every provider configuration of
// a run, so two configurations (an alias) would share whichever was
// configured last. (Terraform itself starts one provider process per
// configuration; TestAccAuthTraceLogHasNoSecrets runs it that way.)
func TestAccUserResourcePermissionDenied(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	_, rootPW := c.RootCredentials()
	root := rawClient(t, c, "root", rootPW)
	ctx := etcdCtx(t)
	for _, err := range []error{
		second(root.Put(ctx, "/app/existing", "readable")),
		second(root.RoleAdd(ctx, "reader")),
		second(root.RoleGrantPermission(ctx, "reader", "/app/", "/app0", clientv3.PermissionType(clientv3.PermRead))),
		second(root.UserAdd(ctx, "reader", "reader-pw")),
		second(root.UserGrantRole(ctx, "reader", "reader")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	asReader := func(password string) string {
		return clusterProvider(c, `username = "reader"`, "password = "+hclString(password))
	}
	const readExisting = `
data "etcd_key" "existing" {
  key = "/app/existing"
}
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				// Reading within the grant works.
				Config: asReader("reader-pw") + readExisting,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.etcd_key.existing", tfjsonpath.New("value"), knownvalue.StringExact("readable")),
				},
			},
			{
				Config: asReader("reader-pw") + `
resource "etcd_key" "denied" {
  key   = "/app/new"
  value = "v"
}
`,
				ExpectError: errorText(`etcd permission denied: etcd user "reader" has no role that grants this on key "/app/new"`),
			},
			{
				Config:      asReader("not-the-reader-pw") + readExisting,
				ExpectError: errorText(`etcd authentication failed for user "reader" (set by username): wrong user name or password`),
			},
		},
	})
	if resp, err := root.Get(etcdCtx(t), "/app/new"); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("/app/new: %v, %v: the refused write left a key", resp, err)
	}
}

// second returns the error of a two-result call.
func second[T any](_ T, err error) error { return err }

// Roles and users made by the provider, checked with Debian's etcdctl 3.4.
func TestAccUserResourceEtcdctlInterop(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	etcdctl, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Skip("etcdctl not found on PATH (apt-get install etcd-client): the interoperability test needs Debian's etcdctl 3.4")
	}
	_, rootPW := c.RootCredentials()
	root := rawClient(t, c, "root", rootPW)
	for k, v := range map[string]string{"/app/x": "app-value", "/other": "other-value"} {
		if _, err := root.Put(etcdCtx(t), k, v); err != nil {
			t.Fatal(err)
		}
	}
	run := func(user string, args ...string) (string, error) {
		cmd := exec.Command(etcdctl, append([]string{"--endpoints", strings.Join(c.Endpoints(), ","), "--user", user, "--dial-timeout", "5s", "--command-timeout", "10s"}, args...)...)
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	const userPW = "interop-pw-551"
	config := rootProvider(c, rootPW) + `
resource "etcd_role" "interop" {
  name = "interop"
  permissions = [
    { key = "/app/", prefix = true, access = "read" },
    { key = "/cfg", access = "readwrite" },
    { key = "/w/a", range_end = "/w/z", access = "write" },
  ]
}
resource "etcd_user" "interop" {
  name     = "interop-user"
  password = "` + userPW + `"
  roles    = [etcd_role.interop.name]
}
`
	check := func(*terraform.State) error {
		out, err := run("root:"+rootPW, "role", "get", "interop")
		if err != nil {
			return fmt.Errorf("etcdctl role get: %v: %s", err, out)
		}
		read, write, _ := strings.Cut(out, "KV Write:")
		for _, want := range []string{"[/app/, /app0) (prefix /app/)", "/cfg"} {
			if !strings.Contains(read, want) {
				return fmt.Errorf("etcdctl role get: %q not under KV Read:\n%s", want, out)
			}
		}
		for _, want := range []string{"/cfg", "[/w/a, /w/z)"} {
			if !strings.Contains(write, want) {
				return fmt.Errorf("etcdctl role get: %q not under KV Write:\n%s", want, out)
			}
		}
		if strings.Contains(write, "/app/") {
			return fmt.Errorf("etcdctl role get: /app/ must be read-only:\n%s", out)
		}
		out, err = run("root:"+rootPW, "user", "get", "interop-user")
		if err != nil || !regexp.MustCompile(`(?m)^Roles: interop\s*$`).MatchString(out) {
			return fmt.Errorf("etcdctl user get: %v:\n%s", err, out)
		}
		creds := "interop-user:" + userPW
		if out, err := run(creds, "get", "/app/x", "--print-value-only"); err != nil || strings.TrimSpace(out) != "app-value" {
			return fmt.Errorf("etcdctl get within the grant: %v:\n%s", err, out)
		}
		if out, err := run(creds, "put", "/cfg", "v"); err != nil {
			return fmt.Errorf("etcdctl put within the grant: %v:\n%s", err, out)
		}
		for _, args := range [][]string{{"put", "/app/x", "v"}, {"get", "/other"}} {
			out, err := run(creds, args...)
			if err == nil || !strings.Contains(out, "permission denied") {
				return fmt.Errorf("etcdctl %s outside the grant was not refused: %v:\n%s", args, err, out)
			}
		}
		if out, err := run("interop-user:wrong", "get", "/app/x"); err == nil || !strings.Contains(out, "authentication failed") {
			return fmt.Errorf("etcdctl with a wrong password: %v:\n%s", err, out)
		}
		return nil
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkGone(func() *clientv3.Client { return root }, []string{"interop"}, []string{"interop-user"}),
		Steps:                    []resource.TestStep{{Config: config, Check: check}},
	})
}

// checkStateFilesFree itself: it must fail on each form a leaked secret
// could take, and pass on a clean state.
func TestCheckStateFilesFree(t *testing.T) {
	const secret = "leak-me-not-42"
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	leaks := map[string]string{"clean": ""}
	for form, v := range secretForms(secret) {
		leaks[form] = v
	}
	leaks["bcrypt"] = string(hash)
	for form, leak := range leaks {
		dir := t.TempDir()
		state := fmt.Sprintf(`{"resources":[{"instances":[{"attributes":{"name":"bob","password_wo":null,"x":%q}}]}]}`, leak)
		if err := os.MkdirAll(filepath.Join(dir, "work1"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "work1", "terraform.tfstate"), []byte(state), 0o600); err != nil {
			t.Fatal(err)
		}
		err := checkStateFilesFree(dir, "bob", secret)(nil)
		if (err == nil) != (form == "clean") {
			t.Errorf("%s: checkStateFilesFree = %v", form, err)
		}
	}
	if err := checkStateFilesFree(t.TempDir(), "bob", secret)(nil); err == nil {
		t.Error("no state file: checkStateFilesFree passed")
	}

	// Private state, encoded as the framework and the CLI encode it: a
	// plain SHA-256 of the secret there is found, the salted HMAC that
	// write_only.go keeps is not.
	plain := sha256.Sum256([]byte(secret))
	salted, err := newWORecord(nil)
	if err != nil {
		t.Fatal(err)
	}
	salted.record("", []byte(secret))
	for name, rec := range map[string]*woRecord{
		"plain sha256": {Salt: make([]byte, woSaltBytes), MACs: map[string][]byte{"": plain[:]}},
		"hmac":         salted,
	} {
		recJSON, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		private, err := json.Marshal(map[string][]byte{privateWriteOnly: recJSON})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		state := fmt.Sprintf(`{"resources":[{"instances":[{"attributes":{"key":"bob"},"private":%q}]}]}`,
			base64.StdEncoding.EncodeToString(private))
		if err := os.WriteFile(filepath.Join(dir, "terraform.tfstate"), []byte(state), 0o600); err != nil {
			t.Fatal(err)
		}
		err = checkStateFilesFree(dir, "bob", secret)(nil)
		if (err == nil) != (name == "hmac") {
			t.Errorf("private state with a %s of the secret: checkStateFilesFree = %v", name, err)
		}
	}
}

// On CLIs without write-only arguments, password_wo is refused up front
// with a clear error rather than silently dropped.
func TestAccUserResourcePasswordWriteOnlyOldCLI(t *testing.T) {
	accCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipAbove(tfversion.Version1_10_0)},
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config:      providerConfig() + userConfig(rbacName(t, "u"), `password_wo = "x"`, "password_wo_version = 1"),
			ExpectError: errorText("Write-only attributes are only supported in Terraform 1.11 and later"),
		}},
	})
}

// The documentation example applies (it uses password_wo: Terraform and
// OpenTofu 1.11+), and etcd holds what it says.
func TestAccUserResourceExample(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	_, rootPW := c.RootCredentials()
	root := rawClient(t, c, "root", rootPW)
	etcd := func() *clientv3.Client { return root }
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	t.Setenv("ETCDCTL_USER", "root:"+rootPW)
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkGone(etcd, []string{"app", "metrics-reader"}, []string{"app", "ci", "prometheus"}),
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/resources/etcd_user"),
			ConfigVariables: config.Variables{
				"app_password": config.StringVariable("example-app-pw"),
				"ci_password":  config.StringVariable("example-ci-pw"),
			},
			Check: resource.ComposeTestCheckFunc(
				checkUserRoles(etcd, "app", "app"),
				checkUserRoles(etcd, "ci", "app", "metrics-reader"),
				checkUserRoles(etcd, "prometheus", "metrics-reader"),
				checkAuthenticates(c, "app", "example-app-pw", true),
				checkAuthenticates(c, "ci", "example-ci-pw", true),
			),
		}},
	})
}

// keep_on_destroy: destroy forgets the user and leaves it in etcd.
func TestAccUserResourceKeepOnDestroy(t *testing.T) {
	accCluster(t)
	name := rbacName(t, "kept")
	t.Cleanup(func() { _, _ = sharedEtcd().UserDelete(context.Background(), name) })
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			if _, err := sharedEtcd().UserGet(context.Background(), name); err != nil {
				return fmt.Errorf("user %q was not kept: %v", name, err)
			}
			return nil
		},
		Steps: []resource.TestStep{{
			Config: providerConfig() + userConfig(name, `password = "kept-user-pw"`, "keep_on_destroy = true"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(userAddr, tfjsonpath.New("keep_on_destroy"), knownvalue.Bool(true)),
			},
		}},
	})
}
