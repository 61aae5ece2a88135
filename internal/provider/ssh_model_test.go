package provider

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// sshSchemaOf returns the `ssh` attribute of a resource's schema at p.
func sshSchemaOf(t *testing.T, r resource.Resource, p ...string) schema.SingleNestedAttribute {
	t.Helper()
	resp := &resource.SchemaResponse{}
	r.Schema(context.Background(), resource.SchemaRequest{}, resp)
	attrs := resp.Schema.Attributes
	var a schema.Attribute
	for i, name := range p {
		a = attrs[name]
		nested, ok := a.(schema.SingleNestedAttribute)
		if !ok {
			t.Fatalf("%s is %T, not a single nested attribute", strings.Join(p[:i+1], "."), a)
		}
		attrs = nested.Attributes
	}
	return a.(schema.SingleNestedAttribute)
}

// The two resources take the same SSH settings: the same attributes, each
// with the same kind, optionality, sensitivity and validators, in ssh and
// in ssh.bastion.
func TestSSHSchemaSameInClusterAndMember(t *testing.T) {
	cluster := sshSchemaOf(t, newClusterResource(), "ssh")
	member := sshSchemaOf(t, newMemberResource(), "node", "ssh")
	type shape struct {
		kind                                    string
		required, optional, computed, sensitive bool
		validators                              int
	}
	shapeOf := func(a schema.Attribute) shape {
		s := shape{kind: typeName(a), required: a.IsRequired(), optional: a.IsOptional(),
			computed: a.IsComputed(), sensitive: a.IsSensitive()}
		if v, ok := a.(schema.StringAttribute); ok {
			s.validators = len(v.Validators)
		}
		return s
	}
	compare := func(where string, c, m map[string]schema.Attribute) {
		var cn, mn []string
		for k := range c {
			cn = append(cn, k)
		}
		for k := range m {
			mn = append(mn, k)
		}
		slices.Sort(cn)
		slices.Sort(mn)
		if !slices.Equal(cn, mn) {
			t.Fatalf("%s: etcd_cluster has %v, etcd_member has %v", where, cn, mn)
		}
		for _, k := range cn {
			if a, b := shapeOf(c[k]), shapeOf(m[k]); a != b {
				t.Errorf("%s.%s: etcd_cluster %+v, etcd_member %+v", where, k, a, b)
			}
		}
	}
	compare("ssh", cluster.Attributes, member.Attributes)
	compare("ssh.bastion", cluster.Attributes["bastion"].(schema.SingleNestedAttribute).Attributes,
		member.Attributes["bastion"].(schema.SingleNestedAttribute).Attributes)

	for _, attrs := range []map[string]schema.Attribute{member.Attributes, member.Attributes["bastion"].(schema.SingleNestedAttribute).Attributes} {
		for _, secret := range []string{"private_key", "passphrase"} {
			if !attrs[secret].IsSensitive() {
				t.Errorf("etcd_member %s is not sensitive", secret)
			}
		}
	}
	for _, want := range []string{"connect_timeout", "bastion"} {
		if _, ok := member.Attributes[want]; !ok {
			t.Errorf("etcd_member node.ssh has no %s", want)
		}
	}
}

func typeName(a schema.Attribute) string {
	switch a.(type) {
	case schema.StringAttribute:
		return "string"
	case schema.Int64Attribute:
		return "int64"
	case schema.BoolAttribute:
		return "bool"
	case schema.SingleNestedAttribute:
		return "object"
	}
	return "other"
}

func sshObject(t *testing.T, m sshModel) types.Object {
	t.Helper()
	resp := &resource.SchemaResponse{}
	newClusterResource().Schema(context.Background(), resource.SchemaRequest{}, resp)
	typ := resp.Schema.Attributes["ssh"].GetType()
	obj, diags := types.ObjectValueFrom(context.Background(), typ.(types.ObjectType).AttrTypes, m)
	if diags.HasError() {
		t.Fatal(diags)
	}
	return obj
}

func bastionObject(t *testing.T, b sshBastionModel) types.Object {
	t.Helper()
	resp := &resource.SchemaResponse{}
	newClusterResource().Schema(context.Background(), resource.SchemaRequest{}, resp)
	typ := resp.Schema.Attributes["ssh"].(schema.SingleNestedAttribute).Attributes["bastion"].GetType()
	obj, diags := types.ObjectValueFrom(context.Background(), typ.(types.ObjectType).AttrTypes, b)
	if diags.HasError() {
		t.Fatal(diags)
	}
	return obj
}

func nullBastion(t *testing.T) types.Object {
	resp := &resource.SchemaResponse{}
	newClusterResource().Schema(context.Background(), resource.SchemaRequest{}, resp)
	typ := resp.Schema.Attributes["ssh"].(schema.SingleNestedAttribute).Attributes["bastion"].GetType()
	return types.ObjectNull(typ.(types.ObjectType).AttrTypes)
}

// emptyBastion is a bastion with only its host set.
func emptyBastion(host string) sshBastionModel {
	return sshBastionModel{
		Host: types.StringValue(host), Port: types.Int64Null(), User: types.StringNull(), PrivateKey: types.StringNull(),
		Passphrase: types.StringNull(), Agent: types.BoolNull(), HostKey: types.StringNull(), InsecureIgnoreHostKey: types.BoolNull(),
	}
}

func baseSSH(t *testing.T) sshModel {
	return sshModel{
		User: types.StringValue("admin"), Port: types.Int64Value(2222),
		PrivateKey: types.StringValue("KEY"), Passphrase: types.StringValue("PASS"), Agent: types.BoolValue(false),
		HostKey: types.StringValue("ssh-ed25519 AAAA"), InsecureIgnoreHostKey: types.BoolNull(),
		ConnectTimeout: types.StringValue(" 7s"), Bastion: nullBastion(t),
	}
}

func TestSSHModelConfig(t *testing.T) {
	ctx := context.Background()
	p := path.Root("node").AtName("ssh")

	t.Run("no bastion", func(t *testing.T) {
		cfg, diags := baseSSH(t).config(ctx, p)
		if diags.HasError() {
			t.Fatal(diags)
		}
		want := node.SSHConfig{User: "admin", Port: 2222, PrivateKey: "KEY", Passphrase: "PASS", HostKey: "ssh-ed25519 AAAA", Timeout: 7 * time.Second}
		if cfg.Bastion != nil || cfg != want {
			t.Fatalf("got %+v, want %+v", cfg, want)
		}
	})

	t.Run("unset user and port are left to node's defaults", func(t *testing.T) {
		m := baseSSH(t)
		m.User, m.Port, m.ConnectTimeout = types.StringNull(), types.Int64Null(), types.StringNull()
		cfg, diags := m.config(ctx, p)
		if diags.HasError() {
			t.Fatal(diags)
		}
		cfg.Host = "10.0.0.1"
		if cfg.User != "" || cfg.Port != 0 || cfg.Timeout != 0 || cfg.Addr() != "10.0.0.1:22" {
			t.Fatalf("got %+v (%s)", cfg, cfg.Addr())
		}
	})

	t.Run("bastion inherits login, key, host key and timeout", func(t *testing.T) {
		m := baseSSH(t)
		m.Bastion = bastionObject(t, emptyBastion("jump.example"))
		cfg, diags := m.config(ctx, p)
		if diags.HasError() {
			t.Fatal(diags)
		}
		want := node.SSHConfig{Host: "jump.example", User: "admin", PrivateKey: "KEY", Passphrase: "PASS",
			HostKey: "ssh-ed25519 AAAA", Timeout: 7 * time.Second}
		if cfg.Bastion == nil || *cfg.Bastion != want {
			t.Fatalf("bastion %+v, want %+v", cfg.Bastion, want)
		}
	})

	t.Run("bastion settings of its own win", func(t *testing.T) {
		m := baseSSH(t)
		b := emptyBastion("jump.example")
		b.Port, b.User, b.Agent, b.InsecureIgnoreHostKey = types.Int64Value(22022), types.StringValue("jumper"), types.BoolValue(true), types.BoolValue(true)
		m.Bastion = bastionObject(t, b)
		cfg, diags := m.config(ctx, p)
		if diags.HasError() {
			t.Fatal(diags)
		}
		want := node.SSHConfig{Host: "jump.example", Port: 22022, User: "jumper", Agent: true, InsecureIgnoreHostKey: true, Timeout: 7 * time.Second}
		if cfg.Bastion == nil || *cfg.Bastion != want {
			t.Fatalf("bastion %+v, want %+v", cfg.Bastion, want)
		}
	})

	t.Run("invalid connect_timeout names the attribute", func(t *testing.T) {
		m := baseSSH(t)
		m.ConnectTimeout = types.StringValue("soon")
		_, diags := m.config(ctx, p)
		wantAttrError(t, diags, p.AtName("connect_timeout"), `"soon" is not a duration`)
	})

	t.Run("through an object, as etcd_cluster holds it", func(t *testing.T) {
		m := baseSSH(t)
		m.Bastion = bastionObject(t, emptyBastion("jump.example"))
		cfg, diags := sshConfigOf(ctx, sshObject(t, m), path.Root("ssh"))
		if diags.HasError() {
			t.Fatal(diags)
		}
		if cfg.User != "admin" || cfg.Bastion == nil || cfg.Bastion.Host != "jump.example" || cfg.Bastion.PrivateKey != "KEY" {
			t.Fatalf("got %+v, bastion %+v", cfg, cfg.Bastion)
		}
	})
}

func TestSSHModelValidateHostKey(t *testing.T) {
	p := path.Root("node").AtName("ssh")
	m := baseSSH(t)
	if diags := m.validateHostKey(p); diags.HasError() {
		t.Fatalf("host key set: %v", diags)
	}
	m.HostKey = types.StringNull()
	wantAttrError(t, m.validateHostKey(p), p.AtName("host_key"), "ssh-keyscan")
	m.InsecureIgnoreHostKey = types.BoolValue(true)
	if diags := m.validateHostKey(p); diags.HasError() {
		t.Fatalf("insecure_ignore_host_key: %v", diags)
	}
	m.InsecureIgnoreHostKey = types.BoolUnknown()
	if diags := m.validateHostKey(p); diags.HasError() {
		t.Fatalf("unknown: %v", diags)
	}
}

func wantAttrError(t *testing.T, diags diag.Diagnostics, p path.Path, detail string) {
	t.Helper()
	for _, d := range diags.Errors() {
		if dp, ok := d.(diag.DiagnosticWithPath); ok && dp.Path().Equal(p) && strings.Contains(d.Detail(), detail) {
			return
		}
	}
	t.Fatalf("no error on %s containing %q in %v", p, detail, diags)
}
