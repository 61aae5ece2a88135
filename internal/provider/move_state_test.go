package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// Source states in the exact JSON that Ferlab-Ste-Justine/etcd (SDKv2,
// schema version 0) writes into a state file.
const (
	ferlabAddr         = "registry.opentofu.org/ferlab-ste-justine/etcd"
	ferlabKeyJSON      = `{"clear_on_deletion":true,"id":"/app/config","key":"/app/config","value":"{\"a\":1}"}`
	ferlabPrefixJSON   = `{"clear_on_deletion":false,"id":"/hello/","keys":[{"key":"a","value":"1"},{"key":"b/c","value":"2"}],"prefix":"/hello/"}`
	ferlabRoleJSON     = `{"id":"app","name":"app","permissions":[{"key":"/app/","permission":"readwrite","range_end":"/app0"},{"key":"/one","permission":"read","range_end":"/one"},{"key":"/a","permission":"write","range_end":"/c"}]}`
	ferlabUserJSON     = `{"id":"alice","password":"s3cret","roles":["app","ops"],"username":"alice"}`
	ferlabCertUserJSON = `{"id":"bob","password":"","roles":[],"username":"bob"}`
)

// moveFromFerlab sends MoveResourceState to the provider's protocol server,
// as the CLI does for `moved { from = <Ferlab's type>, to = <ours> }`, and
// returns the target state's attributes.
func moveFromFerlab(t *testing.T, addr, sourceType, targetType, stateJSON string) (map[string]tftypes.Value, []*tfprotov6.Diagnostic) {
	t.Helper()
	ctx := context.Background()
	srv, err := NewProtocol6Server("test")()
	if err != nil {
		t.Fatal(err)
	}
	// The CLI asks for the schemas before anything else.
	if _, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.MoveResourceState(ctx, &tfprotov6.MoveResourceStateRequest{
		SourceProviderAddress: addr,
		SourceTypeName:        sourceType,
		SourceSchemaVersion:   0,
		SourceState:           &tfprotov6.RawState{JSON: []byte(stateJSON)},
		TargetTypeName:        targetType,
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.TargetState == nil {
		return nil, resp.Diagnostics
	}
	typ := targetObjectType(t, targetType)
	v, err := resp.TargetState.Unmarshal(typ)
	if err != nil {
		t.Fatalf("target state: %v", err)
	}
	attrs := map[string]tftypes.Value{}
	if err := v.As(&attrs); err != nil {
		t.Fatalf("target state: %v", err)
	}
	return attrs, resp.Diagnostics
}

func targetObjectType(t *testing.T, typeName string) tftypes.Type {
	t.Helper()
	ctx := context.Background()
	var r resource.Resource
	switch typeName {
	case "etcd_key":
		r = &keyResource{}
	case "etcd_key_prefix":
		r = &keyPrefixResource{}
	case "etcd_role":
		r = &roleResource{}
	case "etcd_user":
		r = &userResource{}
	default:
		t.Fatalf("no schema for %s", typeName)
	}
	var resp resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &resp)
	return resp.Schema.Type().TerraformType(ctx)
}

func str(t *testing.T, v tftypes.Value) string {
	t.Helper()
	if v.IsNull() {
		return "<null>"
	}
	var s string
	if err := v.As(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func boolOf(t *testing.T, v tftypes.Value) string {
	t.Helper()
	if v.IsNull() {
		return "<null>"
	}
	var b bool
	if err := v.As(&b); err != nil {
		t.Fatal(err)
	}
	if b {
		return "true"
	}
	return "false"
}

func noErrors(t *testing.T, diags []*tfprotov6.Diagnostic) {
	t.Helper()
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			t.Fatalf("move failed: %s: %s", d.Summary, d.Detail)
		}
	}
}

func TestMoveStateFromFerlabKey(t *testing.T) {
	attrs, diags := moveFromFerlab(t, ferlabAddr, "etcd_key", "etcd_key", ferlabKeyJSON)
	noErrors(t, diags)
	for name, want := range map[string]string{"id": "/app/config", "key": "/app/config", "value": `{"a":1}`, "value_base64": "<null>", "lease": "<null>"} {
		if got := str(t, attrs[name]); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := boolOf(t, attrs["keep_on_destroy"]); got != "<null>" {
		t.Errorf("keep_on_destroy = %s, want null for clear_on_deletion = true", got)
	}
	attrs, diags = moveFromFerlab(t, ferlabAddr, "etcd_key", "etcd_key",
		strings.Replace(ferlabKeyJSON, `"clear_on_deletion":true`, `"clear_on_deletion":false`, 1))
	noErrors(t, diags)
	if got := boolOf(t, attrs["keep_on_destroy"]); got != "true" {
		t.Errorf("keep_on_destroy = %s, want true for clear_on_deletion = false", got)
	}
	// Computed attributes are left for the refresh that follows the move.
	if !attrs["mod_revision"].IsNull() {
		t.Errorf("mod_revision = %v, want null until the refresh", attrs["mod_revision"])
	}
}

func TestMoveStateFromFerlabKeyPrefix(t *testing.T) {
	attrs, diags := moveFromFerlab(t, ferlabAddr, "etcd_key_prefix", "etcd_key_prefix", ferlabPrefixJSON)
	noErrors(t, diags)
	if got := str(t, attrs["prefix"]); got != "/hello/" {
		t.Errorf("prefix = %q", got)
	}
	values := map[string]tftypes.Value{}
	if err := attrs["values"].As(&values); err != nil {
		t.Fatal(err)
	}
	if len(values) != 2 || str(t, values["a"]) != "1" || str(t, values["b/c"]) != "2" {
		t.Errorf("values = %v, want {a = 1, b/c = 2} (suffixes, as Ferlab's keys are)", values)
	}
	// clear_on_deletion = false: keep the keys at destroy. This provider
	// does not combine that with delete_unmanaged.
	if got := boolOf(t, attrs["keep_on_destroy"]); got != "true" {
		t.Errorf("keep_on_destroy = %s, want true for clear_on_deletion = false", got)
	}
	if got := boolOf(t, attrs["delete_unmanaged"]); got != "false" {
		t.Errorf("delete_unmanaged = %s, want false with keep_on_destroy", got)
	}

	// Ferlab's prefix resource deletes keys it does not manage: with its
	// default clear_on_deletion, that is delete_unmanaged.
	attrs, diags = moveFromFerlab(t, ferlabAddr, "etcd_key_prefix", "etcd_key_prefix",
		strings.Replace(ferlabPrefixJSON, `"clear_on_deletion":false`, `"clear_on_deletion":true`, 1))
	noErrors(t, diags)
	if got := boolOf(t, attrs["delete_unmanaged"]); got != "true" {
		t.Errorf("delete_unmanaged = %s, want true", got)
	}
	if got := boolOf(t, attrs["keep_on_destroy"]); got != "<null>" {
		t.Errorf("keep_on_destroy = %s, want null (destroy deletes)", got)
	}
}

func TestMoveStateFromFerlabRole(t *testing.T) {
	attrs, diags := moveFromFerlab(t, ferlabAddr, "etcd_role", "etcd_role", ferlabRoleJSON)
	noErrors(t, diags)
	var perms []tftypes.Value
	if err := attrs["permissions"].As(&perms); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range perms {
		m := map[string]tftypes.Value{}
		if err := p.As(&m); err != nil {
			t.Fatal(err)
		}
		got[str(t, m["key"])] = str(t, m["access"]) + " prefix=" + boolOf(t, m["prefix"]) + " range_end=" + str(t, m["range_end"])
	}
	want := map[string]string{
		"/app/": "readwrite prefix=true range_end=<null>", // range_end = prefix range end
		"/one":  "read prefix=<null> range_end=<null>",    // range_end = key: that one key
		"/a":    "write prefix=<null> range_end=/c",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("permission on %s = %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("permissions = %v, want %d", got, len(want))
	}
}

func TestMoveStateFromFerlabUser(t *testing.T) {
	attrs, diags := moveFromFerlab(t, ferlabAddr, "etcd_user", "etcd_user", ferlabUserJSON)
	noErrors(t, diags)
	if str(t, attrs["name"]) != "alice" || str(t, attrs["password"]) != "s3cret" || boolOf(t, attrs["no_password"]) != "<null>" {
		t.Errorf("user = %v", attrs)
	}
	var roles []tftypes.Value
	if err := attrs["roles"].As(&roles); err != nil || len(roles) != 2 {
		t.Errorf("roles = %v (%v), want 2", roles, err)
	}

	attrs, diags = moveFromFerlab(t, ferlabAddr, "etcd_user", "etcd_user", ferlabCertUserJSON)
	noErrors(t, diags)
	if !attrs["password"].IsNull() || boolOf(t, attrs["no_password"]) != "true" {
		t.Errorf("a user without a password moves as no_password = true, got %v", attrs)
	}
}

// A Ferlab type with no equivalent state is an error that names both types
// and the guide; a move from any other provider is not ours to take.
func TestMoveStateFromFerlabRefusesOtherTypes(t *testing.T) {
	_, diags := moveFromFerlab(t, ferlabAddr, "etcd_synchronized_directory", "etcd_key_prefix",
		`{"id":"x","directory":"/tmp/d","key_prefix":"/d/"}`)
	var msg string
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			msg += d.Summary + ": " + d.Detail
		}
	}
	for _, want := range []string{"etcd_synchronized_directory", "etcd_key_prefix", "Migrating from other etcd providers", "state rm"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}

	_, diags = moveFromFerlab(t, "registry.terraform.io/someone/etcd", "etcd_key", "etcd_key", ferlabKeyJSON)
	if len(diags) == 0 {
		t.Fatal("a move from an unknown provider was accepted")
	}
	for _, d := range diags {
		if strings.Contains(d.Detail, "Migrating from other etcd providers") {
			t.Errorf("a move from an unknown provider got the Ferlab error: %s", d.Detail)
		}
	}

	_, diags = moveFromFerlab(t, ferlabAddr, "etcd_key", "etcd_key", `{"key":`)
	if len(diags) == 0 || !strings.Contains(diags[0].Detail, "not the expected JSON") {
		t.Errorf("corrupt source state: diags = %v", diags)
	}
	_, diags = moveFromFerlab(t, ferlabAddr, "etcd_role", "etcd_role", `{"id":"","permissions":[]}`)
	if len(diags) == 0 || !strings.Contains(diags[0].Detail, "etcd_role state to move has no name") {
		t.Errorf("source state without a name: diags = %v", diags)
	}
}
