package provider

// Acceptance tests run a real Terraform CLI (OpenTofu or Terraform) against
// ONE shared 3-member etcd cluster that TestMain starts in-process with
// testserver. Without TF_ACC only the unit tests run and no cluster starts.
//
// Environment, for both CLIs:
//
//	TF_ACC=1                       run the acceptance tests
//	TF_ACC_TERRAFORM_PATH=<cli>    the CLI binary, e.g. the paths printed by
//	                               scripts/install-clis.sh (OpenTofu 1.12.6,
//	                               Terraform 1.5.7)
//	TF_CLI_CONFIG_FILE=<file>      must name an existing (possibly empty)
//	                               file: a missing one makes the CLI print a
//	                               warning into `version` output, which breaks
//	                               plugin-testing's version parsing
//
// OpenTofu only:
//
//	TF_ACC_PROVIDER_HOST=registry.opentofu.org
//	                               OpenTofu resolves the implicit provider
//	                               "etcd" to registry.opentofu.org/hashicorp/etcd;
//	                               plugin-testing must reattach the in-process
//	                               provider under that address (its default
//	                               host is registry.terraform.io, which only
//	                               Terraform uses). Leave TF_ACC_PROVIDER_NAMESPACE
//	                               unset: test configurations use the implicit
//	                               "hashicorp" namespace on both CLIs.
//
// TestMain fills in TF_CLI_CONFIG_FILE (an empty temporary file) when it
// names a missing file, and TF_ACC_PROVIDER_HOST when TF_ACC_TERRAFORM_PATH
// is OpenTofu, so `TF_ACC=1 TF_ACC_TERRAFORM_PATH=<cli> go test
// ./internal/provider` works for both; setting them explicitly wins. It also
// unsets every ETCDCTL_* variable so a developer's shell cannot change what
// the tests connect to.
//
// Example:
//
//	: > /tmp/empty.tfrc
//	TF_ACC=1 TF_CLI_CONFIG_FILE=/tmp/empty.tfrc TF_ACC_PROVIDER_HOST=registry.opentofu.org \
//	  TF_ACC_TERRAFORM_PATH=$HOME/.cache/terraform-provider-etcd/cli/tofu-1.12.6/tofu \
//	  go test ./internal/provider -count=1
//	TF_ACC=1 TF_CLI_CONFIG_FILE=/tmp/empty.tfrc \
//	  TF_ACC_TERRAFORM_PATH=$HOME/.cache/terraform-provider-etcd/cli/terraform-1.5.7/terraform \
//	  go test ./internal/provider -count=1

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/function"
	fwprovider "github.com/hashicorp/terraform-plugin-framework/provider"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// testCluster is the shared cluster of the acceptance tests; nil without TF_ACC.
var testCluster *testserver.Cluster

// testAccProviders serves the provider in-process to the CLI.
var testAccProviders = map[string]func() (tfprotov6.ProviderServer, error){
	"etcd": NewProtocol6Server("test"),
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "ETCDCTL_") {
			os.Unsetenv(name)
		}
	}
	if os.Getenv(resource.EnvTfAcc) == "" {
		return m.Run()
	}
	cleanup, err := prepareCLIEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance test setup:", err)
		return 1
	}
	defer cleanup()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := testserver.New(ctx, testserver.WithMembers(3))
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance test setup: start etcd cluster:", err)
		return 1
	}
	defer c.Close()
	testCluster = c
	return m.Run()
}

// prepareCLIEnv sets the variables described at the top of this file when
// they are missing.
func prepareCLIEnv() (cleanup func(), err error) {
	cleanup = func() {}
	if f := os.Getenv("TF_CLI_CONFIG_FILE"); f != "" {
		if _, err := os.Stat(f); err != nil {
			empty, err := os.CreateTemp("", "empty-*.tfrc")
			if err != nil {
				return cleanup, err
			}
			empty.Close()
			cleanup = func() { os.Remove(empty.Name()) }
			os.Setenv("TF_CLI_CONFIG_FILE", empty.Name())
		}
	}
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if cli == "" || os.Getenv(resource.EnvTfAccProviderHost) != "" {
		return cleanup, nil
	}
	out, err := exec.Command(cli, "version").Output()
	if err != nil {
		return cleanup, fmt.Errorf("%s version: %w", cli, err)
	}
	if strings.HasPrefix(string(out), "OpenTofu") {
		os.Setenv(resource.EnvTfAccProviderHost, "registry.opentofu.org")
	}
	return cleanup, nil
}

// accCluster returns the shared cluster, skipping the test without TF_ACC.
func accCluster(t *testing.T) *testserver.Cluster {
	t.Helper()
	if testCluster == nil {
		t.Skipf("acceptance test: set %s=1", resource.EnvTfAcc)
	}
	return testCluster
}

// keyPrefix is a test's own part of the key space.
func keyPrefix(t *testing.T) string {
	return "/acc/" + t.Name() + "/"
}

// hclString quotes s as an HCL string literal.
func hclString(s string) string {
	q := strconv.Quote(s)
	q = strings.ReplaceAll(q, "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

func hclList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = hclString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// providerConfig is a provider block for the shared cluster plus extra
// attribute lines.
func providerConfig(extra ...string) string {
	return fmt.Sprintf("provider \"etcd\" {\n  endpoints = %s\n  %s\n}\n", hclList(testCluster.Endpoints()), strings.Join(extra, "\n  "))
}

// errorText matches a diagnostic whose words may be wrapped across lines by
// the CLI.
func errorText(phrase string) *regexp.Regexp {
	words := strings.Fields(phrase)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(strings.Join(words, `\s+`))
}

// etcdCtx bounds a test's direct calls to etcd. Some tests share one for
// all their setup and checks (TestResourceIdentityProtocol, dozens of
// reads), so the bound is generous: on a machine busy with other work a
// call that takes milliseconds on a quiet one can take seconds.
func etcdCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// stepsContext is the context for the calls a resource.ParallelTest makes
// in its steps and checks (SSH commands, waits). It has no deadline of its
// own, because the test creates it before ParallelTest pauses the test, and
// the pause lasts as long as the tests ahead of it run: once in CI 17
// minutes, which spent a 15-minute deadline before the first step began.
// Every wait carries its own limit, and go test's -timeout bounds a hang.
func stepsContext(t *testing.T) context.Context {
	return t.Context()
}

func mustPut(t *testing.T, key, value string, opts ...clientv3.OpOption) *clientv3.PutResponse {
	t.Helper()
	resp, err := testCluster.Client().Put(etcdCtx(t), key, value, opts...)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp
}

// checkEtcdValue reads key with plain clientv3 and compares its value.
func checkEtcdValue(key, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := testCluster.Client().Get(ctx, key)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("key %q: missing in etcd, want %q", key, want)
		}
		if got := string(resp.Kvs[0].Value); got != want {
			return fmt.Errorf("key %q: etcd holds %q, want %q", key, got, want)
		}
		return nil
	}
}

// checkNoKeys asserts that nothing is left under prefix in etcd.
func checkNoKeys(prefix string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := testCluster.Client().Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return err
		}
		if len(resp.Kvs) > 0 {
			keys := make([]string, len(resp.Kvs))
			for i, kv := range resp.Kvs {
				keys[i] = string(kv.Key)
			}
			return fmt.Errorf("keys left in etcd under %q: %q", prefix, keys)
		}
		return nil
	}
}

// writeTempFile writes content to a file in the test's temporary directory.
func writeTempFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A key resource for the provider tests.
func keyConfig(key, value string) string {
	return fmt.Sprintf("resource \"etcd_key\" \"test\" {\n  key   = %s\n  value = %s\n}\n", hclString(key), hclString(value))
}

func TestAccProviderEnvEndpoints(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the provider runs in this process and reads its environment.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	key := keyPrefix(t) + "k"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(keyPrefix(t)),
		Steps: []resource.TestStep{{
			Config: "provider \"etcd\" {}\n" + keyConfig(key, "from env"),
			Check:  checkEtcdValue(key, "from env"),
		}},
	})
}

func TestAccProviderNoEndpoints(t *testing.T) {
	accCluster(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config:      "provider \"etcd\" {}\n" + keyConfig(keyPrefix(t)+"k", "v"),
			ExpectError: errorText("no etcd endpoints: set endpoints in the provider block or ETCDCTL_ENDPOINTS"),
		}},
	})
}

func TestAccProviderInvalidAttributes(t *testing.T) {
	accCluster(t)
	key := keyPrefix(t) + "k"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      providerConfig(`dial_timeout = "2"`) + keyConfig(key, "v"),
				ExpectError: errorText(`"2" is not a duration`),
			},
			{
				Config:      providerConfig(`request_timeout = "-1s"`) + keyConfig(key, "v"),
				ExpectError: errorText("must be a positive duration"),
			},
			{
				Config:      `provider "etcd" { endpoints = ["ftp://127.0.0.1:2379"] }` + "\n" + keyConfig(key, "v"),
				ExpectError: errorText(`has scheme "ftp"; use http, https, unix or unixs`),
			},
			{
				Config:      `provider "etcd" { endpoints = [] }` + "\n" + keyConfig(key, "v"),
				ExpectError: errorText("endpoints is an empty list: list at least one client URL"),
			},
			{
				Config:      providerConfig(`ca_cert = "/nonexistent/ca.pem"`) + keyConfig(key, "v"),
				ExpectError: errorText(`cannot read CA certificate file "/nonexistent/ca.pem"`),
			},
			{
				Config:      providerConfig(`cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"`) + keyConfig(key, "v"),
				ExpectError: errorText("no private key is: set key (or ETCDCTL_KEY)"),
			},
		},
	})
}

func TestAccProviderUnreachable(t *testing.T) {
	accCluster(t)
	// Two loopback ports where nothing listens.
	var eps []string
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		eps = append(eps, "http://"+l.Addr().String())
		l.Close()
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config: fmt.Sprintf(`provider "etcd" {
  endpoints       = %s
  request_timeout = "1s"
  dial_timeout    = "1s"
}
data "etcd_key" "test" {
  key = "/anything"
}
`, hclList(eps)),
			ExpectError: errorText(fmt.Sprintf("no answer from %s, %s within 1s", eps[0], eps[1])),
		}},
	})
}

// The endpoints come from a resource created in the same apply: planning
// must not fail, and the key is created once they are known.
func TestAccProviderEndpointsUnknownAtPlan(t *testing.T) {
	c := accCluster(t)
	key := keyPrefix(t) + "k"
	config := fmt.Sprintf(`resource "terraform_data" "cluster" {
  input = %s
}

provider "etcd" {
  endpoints = terraform_data.cluster.output
}
`, hclList(c.Endpoints()))
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(keyPrefix(t)),
		Steps: []resource.TestStep{
			{
				// A data source must be read at plan time: clear error.
				Config:      config + "data \"etcd_key\" \"test\" {\n  key = \"/x\"\n}\n",
				ExpectError: errorText("depends on values not known until apply: endpoints"),
			},
			{
				Config: config + keyConfig(key, "v"),
				Check:  checkEtcdValue(key, "v"),
			},
		},
	})
}

func TestAccProviderTLSAndAuth(t *testing.T) {
	accCluster(t)
	c := testserver.Start(t, testserver.WithMembers(1), testserver.WithTLS(), testserver.WithAuth())
	info := c.TLS()
	user, password := c.RootCredentials()
	prefix := keyPrefix(t)

	// A user that may only touch prefix+"app/".
	ctx := etcdCtx(t)
	raw := c.Client()
	if _, err := raw.RoleAdd(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.RoleGrantPermission(ctx, "app", prefix+"app/", clientv3.GetPrefixRangeEnd(prefix+"app/"), clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.UserAdd(ctx, "app", "app-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.UserGrantRole(ctx, "app", "app"); err != nil {
		t.Fatal(err)
	}
	appCert, appKey, err := c.IssueClientCert("app")
	if err != nil {
		t.Fatal(err)
	}

	provider := func(user, password, cert, key string) string {
		return fmt.Sprintf(`provider "etcd" {
  endpoints = %s
  ca_cert   = %s
  cert      = %s
  key       = %s
  username  = %s
  password  = %s
}
`, hclList(c.Endpoints()), hclString(info.CAFile), hclString(cert), hclString(key), hclString(user), hclString(password))
	}
	key := prefix + "app/k"
	checkDestroyed := func(*terraform.State) error {
		resp, err := raw.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if resp.Count != 0 {
			return fmt.Errorf("%d keys left under %s", resp.Count, prefix)
		}
		return nil
	}

	t.Run("root with files and PEM", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProviders,
			CheckDestroy:             checkDestroyed,
			Steps: []resource.TestStep{{
				// CA from a file, certificate as PEM content, key from a file.
				Config: provider(user, password, string(info.CertPEM), info.KeyFile) + keyConfig(key, "secure"),
				Check: func(*terraform.State) error {
					resp, err := raw.Get(context.Background(), key)
					if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "secure" {
						return fmt.Errorf("etcd holds %v (err %v)", resp, err)
					}
					return nil
				},
			}},
		})
	})
	t.Run("wrong password", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProviders,
			Steps: []resource.TestStep{{
				Config:      provider(user, "not-the-password", info.CertFile, string(info.KeyPEM)) + keyConfig(key, "v"),
				ExpectError: errorText(`etcd authentication failed for user "root" (set by username): wrong user name or password`),
			}},
		})
	})
	t.Run("permission denied", func(t *testing.T) {
		resource.Test(t, resource.TestCase{
			ProtoV6ProviderFactories: testAccProviders,
			Steps: []resource.TestStep{{
				Config:      provider("app", "app-password", string(appCert), string(appKey)) + keyConfig(prefix+"other", "v"),
				ExpectError: errorText(fmt.Sprintf(`etcd user "app" has no role that grants this on key %q`, prefix+"other")),
			}},
		})
	})
}

// The documentation example is a valid configuration. It configures nothing
// that exists here, so it is planned only.
func TestAccProviderExample(t *testing.T) {
	accCluster(t)
	resource.ParallelTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			// The example has provider blocks, so the providers go here.
			ProtoV6ProviderFactories: testAccProviders,
			ConfigDirectory:          config.StaticDirectory("../../examples/provider"),
			ConfigVariables:          config.Variables{"etcd_password": config.StringVariable("secret")},
			PlanOnly:                 true,
		}},
	})
}

// attributeDescriptions maps "attribute NAME" to the description of each
// attribute of a schema.
func attributeDescriptions[A interface{ GetMarkdownDescription() string }](attrs map[string]A) map[string]string {
	out := make(map[string]string, len(attrs))
	for name, a := range attrs {
		out["attribute "+name] = a.GetMarkdownDescription()
	}
	return out
}

// Every schema the provider registers is valid and documented: the
// provider's, and those of every resource, data source, ephemeral resource
// and function its lists return (enumerated from the provider, so that a new
// one is covered without touching this test). The protocol server, which
// checks them again when the CLI asks, serves exactly these, without
// diagnostics.
func TestSchemasValid(t *testing.T) {
	ctx := context.Background()
	p := New("test")().(*etcdProvider)
	presp := &fwprovider.SchemaResponse{}
	p.Schema(ctx, fwprovider.SchemaRequest{}, presp)
	check := func(kind, name string, diags diag.Diagnostics, description string, attrs map[string]string) {
		t.Helper()
		for _, d := range diags {
			t.Errorf("%s %s: %s: %s: %s", kind, name, d.Severity(), d.Summary(), d.Detail())
		}
		if description == "" {
			t.Errorf("%s %s has no description", kind, name)
		}
		for attr, desc := range attrs {
			if desc == "" {
				t.Errorf("%s %s: %s has no description", kind, name, attr)
			}
		}
	}

	check("provider", "etcd", presp.Schema.ValidateImplementation(ctx), presp.Schema.MarkdownDescription,
		attributeDescriptions(presp.Schema.Attributes))
	for _, name := range []string{"password", "key"} {
		if !presp.Schema.Attributes[name].IsSensitive() {
			t.Errorf("provider attribute %s is not sensitive", name)
		}
	}

	var resources, dataSources, ephemerals, functions []string
	for _, f := range p.Resources(ctx) {
		r := f()
		mresp := &fwresource.MetadataResponse{}
		r.Metadata(ctx, fwresource.MetadataRequest{ProviderTypeName: "etcd"}, mresp)
		sresp := &fwresource.SchemaResponse{}
		r.Schema(ctx, fwresource.SchemaRequest{}, sresp)
		check("resource", mresp.TypeName, append(sresp.Diagnostics, sresp.Schema.ValidateImplementation(ctx)...),
			sresp.Schema.MarkdownDescription, attributeDescriptions(sresp.Schema.Attributes))
		resources = append(resources, mresp.TypeName)
	}
	for _, f := range p.DataSources(ctx) {
		d := f()
		mresp := &datasource.MetadataResponse{}
		d.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: "etcd"}, mresp)
		sresp := &datasource.SchemaResponse{}
		d.Schema(ctx, datasource.SchemaRequest{}, sresp)
		check("data source", mresp.TypeName, append(sresp.Diagnostics, sresp.Schema.ValidateImplementation(ctx)...),
			sresp.Schema.MarkdownDescription, attributeDescriptions(sresp.Schema.Attributes))
		dataSources = append(dataSources, mresp.TypeName)
	}
	for _, f := range p.EphemeralResources(ctx) {
		e := f()
		mresp := &ephemeral.MetadataResponse{}
		e.Metadata(ctx, ephemeral.MetadataRequest{ProviderTypeName: "etcd"}, mresp)
		sresp := &ephemeral.SchemaResponse{}
		e.Schema(ctx, ephemeral.SchemaRequest{}, sresp)
		check("ephemeral resource", mresp.TypeName, append(sresp.Diagnostics, sresp.Schema.ValidateImplementation(ctx)...),
			sresp.Schema.MarkdownDescription, attributeDescriptions(sresp.Schema.Attributes))
		ephemerals = append(ephemerals, mresp.TypeName)
	}
	for _, f := range p.Functions(ctx) {
		fn := f()
		mresp := &function.MetadataResponse{}
		fn.Metadata(ctx, function.MetadataRequest{}, mresp)
		dresp := &function.DefinitionResponse{}
		fn.Definition(ctx, function.DefinitionRequest{}, dresp)
		vresp := &function.DefinitionValidateResponse{}
		dresp.Definition.ValidateImplementation(ctx, function.DefinitionValidateRequest{FuncName: mresp.Name}, vresp)
		params := map[string]string{}
		for _, prm := range dresp.Definition.Parameters {
			params["parameter "+prm.GetName()] = prm.GetMarkdownDescription()
		}
		if v := dresp.Definition.VariadicParameter; v != nil {
			params["parameter "+v.GetName()] = v.GetMarkdownDescription()
		}
		check("function", mresp.Name, append(dresp.Diagnostics, vresp.Diagnostics...), dresp.Definition.MarkdownDescription, params)
		functions = append(functions, mresp.Name)
	}
	for kind, names := range map[string][]string{"resources": resources, "data sources": dataSources, "ephemeral resources": ephemerals, "functions": functions} {
		if len(names) == 0 {
			t.Errorf("the provider registers no %s", kind)
		}
	}

	t.Logf("checked %d resources, %d data sources, %d ephemeral resources and %d functions",
		len(resources), len(dataSources), len(ephemerals), len(functions))

	srv, err := NewProtocol6Server("test")()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Errorf("GetProviderSchema: %s: %s: %s", d.Severity, d.Summary, d.Detail)
	}
	for _, c := range []struct {
		kind       string
		registered []string
		served     []string
	}{
		{"resources", resources, slices.Collect(maps.Keys(resp.ResourceSchemas))},
		{"data sources", dataSources, slices.Collect(maps.Keys(resp.DataSourceSchemas))},
		{"ephemeral resources", ephemerals, slices.Collect(maps.Keys(resp.EphemeralResourceSchemas))},
		{"functions", functions, slices.Collect(maps.Keys(resp.Functions))},
	} {
		slices.Sort(c.registered)
		slices.Sort(c.served)
		if !slices.Equal(c.registered, c.served) {
			t.Errorf("%s: the server serves %q, the provider registers %q", c.kind, c.served, c.registered)
		}
	}
}
