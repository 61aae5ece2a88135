package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/shell"
)

var (
	_ resource.Resource                   = (*roleResource)(nil)
	_ resource.ResourceWithConfigure      = (*roleResource)(nil)
	_ resource.ResourceWithImportState    = (*roleResource)(nil)
	_ resource.ResourceWithIdentity       = (*roleResource)(nil)
	_ resource.ResourceWithValidateConfig = (*roleResource)(nil)
)

// roleResource is etcd_role: one role and the key ranges it grants.
type roleResource struct {
	provider *providerData
}

func newRoleResource() resource.Resource { return &roleResource{} }

type roleResourceModel struct {
	ID            types.String       `tfsdk:"id"`
	Name          types.String       `tfsdk:"name"`
	Permissions   permissionSetValue `tfsdk:"permissions"`
	KeepOnDestroy types.Bool         `tfsdk:"keep_on_destroy"`
}

// permissionModel is one element of permissions. A range is written one of
// three ways: key alone (one key), key with prefix = true (every key
// starting with key), or key with range_end (the keys from key up to, not
// including, range_end).
type permissionModel struct {
	Key      types.String `tfsdk:"key"`
	RangeEnd types.String `tfsdk:"range_end"`
	Prefix   types.Bool   `tfsdk:"prefix"`
	Access   types.String `tfsdk:"access"`
}

var permissionAttrTypes = map[string]attr.Type{
	"key":       types.StringType,
	"range_end": types.StringType,
	"prefix":    types.BoolType,
	"access":    types.StringType,
}

var permissionObjectType = types.ObjectType{AttrTypes: permissionAttrTypes}

func (r *roleResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_role"
}

const permissionsDescription = "A permission covers one key (`key` alone), every key that starts with `key` " +
	"(`prefix = true`), or the keys from `key` up to, not including, `range_end`. etcd stores a prefix as the " +
	"equivalent range end (`/app/` → `/app0`), so `prefix = true` and `range_end = \"/app0\"` are the same " +
	"permission; the provider keeps whichever form the configuration uses, and shows a permission granted " +
	"outside Terraform with `prefix = true` when it is a prefix."

func (r *roleResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An etcd role: a named set of key-range permissions that users are granted with " +
			"`etcd_user.roles`.\n\n" +
			"Read reports exactly the permissions etcd holds, so a permission granted or revoked outside " +
			"Terraform (for example with `etcdctl role grant-permission`) shows up as a change on the next plan. " +
			"An update grants and revokes only the difference, granting before revoking so that no access " +
			"disappears while it is replaced; it fails, without changing anything, when the role was changed " +
			"outside Terraform after the plan.\n\n" +
			"The built-in `root` role can be managed (created and imported) but not deleted: etcd requires it to " +
			"enable authentication, and it always grants read-write access to every key, so its `permissions` " +
			"must be empty.",
		Attributes: map[string]schema.Attribute{
			"keep_on_destroy": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Destroying the resource (or replacing it, e.g. when `name` changes) only removes " +
					"it from the state and leaves the role in etcd. Set it, and apply, before the destroy. Defaults to " +
					"`false`: destroy deletes the role.",
			},
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The role name, as for `name`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The role name. Changing it replaces the role (users holding it lose it).",
				Validators:          []validator.String{nameValidator{kind: "role"}},
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"permissions": schema.SetNestedAttribute{
				CustomType:          permissionSet,
				Optional:            true,
				Computed:            true,
				Default:             setdefault.StaticValue(types.SetValueMust(permissionObjectType, nil)),
				MarkdownDescription: "The key ranges the role grants access to. Defaults to none. " + permissionsDescription,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"key": schema.StringAttribute{
							Required:            true,
							MarkdownDescription: "The key, or the start of the range, e.g. `/app/`.",
							Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
						},
						"range_end": schema.StringAttribute{
							Optional: true,
							MarkdownDescription: "End of the range, not included, e.g. `/app0`; `\"\\u0000\"` means every " +
								"key from `key` on. Conflicts with `prefix`.",
							Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
						},
						"prefix": schema.BoolAttribute{
							Optional:            true,
							MarkdownDescription: "When true, the permission covers every key that starts with `key`. Conflicts with `range_end`.",
						},
						"access": schema.StringAttribute{
							Required:            true,
							MarkdownDescription: "`read`, `write` or `readwrite`.",
							Validators:          []validator.String{stringvalidator.OneOf(client.Accesses...)},
						},
					},
				},
			},
		},
	}
}

func (r *roleResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = stringIdentitySchema("name", "The role name.")
}

func (r *roleResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *roleResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m roleResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	perms, known, diags := permissionModels(ctx, m.Permissions)
	resp.Diagnostics.Append(diags...)
	if !known || resp.Diagnostics.HasError() {
		return
	}
	if m.Name.ValueString() == client.RootName && len(perms) > 0 {
		resp.Diagnostics.AddAttributeError(path.Root("permissions"), "The root role takes no permissions",
			"The root role always grants read-write access to every key, and etcd ignores permissions granted "+
				"to it. Remove permissions from this etcd_role.")
		return
	}
	_, diags = clientPermissions(perms)
	resp.Diagnostics.Append(diags...)
}

// permissionModels extracts the elements of a permissions set. known is
// false when the set, or an element, is not known yet.
func permissionModels(ctx context.Context, set permissionSetValue) ([]permissionModel, bool, diag.Diagnostics) {
	if set.IsNull() {
		return nil, true, nil
	}
	if set.IsUnknown() {
		return nil, false, nil
	}
	for _, e := range set.Elements() {
		if e.IsUnknown() {
			return nil, false, nil
		}
	}
	var out []permissionModel
	diags := set.ElementsAs(ctx, &out, false)
	for _, m := range out {
		if m.Key.IsUnknown() || m.RangeEnd.IsUnknown() || m.Prefix.IsUnknown() || m.Access.IsUnknown() {
			return out, false, diags
		}
	}
	return out, true, diags
}

// permission converts one configured permission to what etcd stores.
func (m permissionModel) permission() (client.Permission, error) {
	key := m.Key.ValueString()
	p := client.Permission{KeyRange: client.KeyRange{Key: key}}
	a, err := client.ParseAccess(m.Access.ValueString())
	if err != nil {
		return p, fmt.Errorf("permission on key %q: %w", key, err)
	}
	p.Access = a
	switch {
	case m.Prefix.ValueBool() && !m.RangeEnd.IsNull():
		return p, fmt.Errorf("permission on key %q sets both prefix = true and range_end; use one: prefix = true covers every key starting with %q, range_end an explicit end", key, key)
	case m.Prefix.ValueBool():
		p.RangeEnd = client.PrefixRangeEnd(key)
	case !m.RangeEnd.IsNull():
		p.RangeEnd = m.RangeEnd.ValueString()
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("permission on key %q: %w", key, err)
	}
	return p, nil
}

// clientPermissions converts and checks configured permissions: each must be
// valid, and no two may cover the same range (etcd keeps one access per
// range; use readwrite for both).
func clientPermissions(models []permissionModel) ([]client.Permission, diag.Diagnostics) {
	var diags diag.Diagnostics
	out := make([]client.Permission, 0, len(models))
	seen := map[client.KeyRange]permissionModel{}
	for _, m := range models {
		p, err := m.permission()
		if err != nil {
			diags.AddAttributeError(path.Root("permissions"), "Invalid permission", err.Error()+".")
			continue
		}
		if prev, dup := seen[p.KeyRange]; dup {
			diags.AddAttributeError(path.Root("permissions"), "Duplicate permission",
				fmt.Sprintf("Two permissions cover the same %s (access %q and %q): etcd keeps one access per range. "+
					"Keep one, with access = \"readwrite\" for both read and write. prefix = true and the "+
					"equivalent range_end (%q) are the same range.",
					p.KeyRange, prev.Access.ValueString(), m.Access.ValueString(), client.PrefixRangeEnd(p.Key)))
			continue
		}
		seen[p.KeyRange] = m
		out = append(out, p)
	}
	client.SortPermissions(out)
	return out, diags
}

// permissionsValue builds the permissions set from what etcd holds. A
// permission on a range that prior (the configuration as planned, or the
// previous state) already has keeps prior's form -- prefix = true, an
// explicit range_end, prefix = false -- so equivalent spellings never show
// as a change; any other permission gets the canonical form: prefix = true
// when the range is a prefix, range_end otherwise, neither for one key.
func permissionsValue(held []client.Permission, prior []permissionModel) (permissionSetValue, diag.Diagnostics) {
	var diags diag.Diagnostics
	forms := make(map[client.KeyRange]permissionModel, len(prior))
	for _, m := range prior {
		if p, err := m.permission(); err == nil {
			forms[p.KeyRange] = m
		}
	}
	elems := make([]attr.Value, 0, len(held))
	for _, p := range held {
		m, ok := forms[p.KeyRange]
		if !ok {
			m = canonicalPermission(p)
			if !utf8.ValidString(m.Key.ValueString()) || !utf8.ValidString(m.RangeEnd.ValueString()) {
				diags.AddAttributeError(path.Root("permissions"), "Permission not representable",
					fmt.Sprintf("etcd holds a %s permission on %s, which is not valid UTF-8 and cannot be shown in "+
						"Terraform. Revoke it with etcdctl role revoke-permission, or grant it with prefix = true.",
						p.Access, p.KeyRange))
				continue
			}
		}
		m.Access = types.StringValue(string(p.Access))
		obj, d := types.ObjectValueFrom(context.Background(), permissionAttrTypes, m)
		diags.Append(d...)
		elems = append(elems, obj)
	}
	set, d := types.SetValue(permissionObjectType, elems)
	diags.Append(d...)
	return permissionSetValue{SetValue: set}, diags
}

func canonicalPermission(p client.Permission) permissionModel {
	m := permissionModel{
		Key:      types.StringValue(p.Key),
		RangeEnd: types.StringNull(),
		Prefix:   types.BoolNull(),
		Access:   types.StringValue(string(p.Access)),
	}
	switch {
	case p.RangeEnd == "":
	case p.IsPrefix():
		m.Prefix = types.BoolValue(true)
	default:
		m.RangeEnd = types.StringValue(p.RangeEnd)
	}
	return m
}

// heldPermissions reads role's permissions. The root role's are not
// reported (etcd shows one synthetic read-write permission on every key).
func heldPermissions(ctx context.Context, cl *client.Client, role string) ([]client.Permission, error) {
	perms, err := cl.GetRole(ctx, role)
	if err != nil || role == client.RootName {
		return nil, err
	}
	return perms, nil
}

// setFromEtcd fills m from etcd; prior gives the configured forms.
func (m *roleResourceModel) setFromEtcd(name string, held []client.Permission, prior []permissionModel) diag.Diagnostics {
	m.ID = types.StringValue(name)
	m.Name = types.StringValue(name)
	set, diags := permissionsValue(held, prior)
	m.Permissions = set
	return diags
}

func (r *roleResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan roleResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	models, _, diags := permissionModels(ctx, plan.Permissions)
	resp.Diagnostics.Append(diags...)
	desired, diags := clientPermissions(models)
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	name := plan.Name.ValueString()
	err := cl.CreateRole(ctx, name)
	switch {
	case errors.Is(err, client.ErrRoleExists):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Role already exists",
			fmt.Sprintf("The role %q already exists in etcd, and the provider does not take over roles it did not "+
				"create. To manage it with Terraform, import it (replace NAME with this resource's name):\n\n"+
				"    terraform import etcd_role.NAME %s\n\nor choose another name.", name, shell.Quote(name)))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot create role", err.Error())
		return
	}
	for _, p := range desired {
		if err := cl.GrantPermission(ctx, name, p); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("permissions"), "Cannot grant permission", err.Error())
			break
		}
	}
	// Record what etcd holds, also after a failed grant: the role exists
	// and Terraform must know it (it is then tainted and replaced).
	r.readInto(ctx, cl, &plan, models, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", name)...)
	tflog.Debug(ctx, "created etcd role", map[string]any{"role": name, "permissions": len(desired)})
}

// readInto replaces m's permissions with what etcd holds.
func (r *roleResource) readInto(ctx context.Context, cl *client.Client, m *roleResourceModel, prior []permissionModel, diags *diag.Diagnostics) {
	name := m.Name.ValueString()
	held, err := heldPermissions(ctx, cl, name)
	if err != nil {
		diags.AddAttributeError(path.Root("permissions"), "Cannot read role", err.Error())
		return
	}
	diags.Append(m.setFromEtcd(name, held, prior)...)
}

func (r *roleResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state roleResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", state.Name.ValueString())...)
	if r.provider.keepStateUnconfigured(&resp.Diagnostics) {
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	prior, _, diags := permissionModels(ctx, state.Permissions)
	resp.Diagnostics.Append(diags...)

	name := state.Name.ValueString()
	held, err := heldPermissions(ctx, cl, name)
	switch {
	case errors.Is(err, client.ErrRoleNotFound):
		tflog.Warn(ctx, "etcd role deleted outside Terraform; removing it from state", map[string]any{"role": name})
		resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", state.Name.ValueString())...) // the framework wants one
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot read role", err.Error())
		return
	}
	resp.Diagnostics.Append(state.setFromEtcd(name, held, prior)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", state.Name.ValueString())...)
}

func (r *roleResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state roleResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	planModels, _, diags := permissionModels(ctx, plan.Permissions)
	resp.Diagnostics.Append(diags...)
	desired, diags := clientPermissions(planModels)
	resp.Diagnostics.Append(diags...)
	stateModels, _, diags := permissionModels(ctx, state.Permissions)
	resp.Diagnostics.Append(diags...)
	prior, diags := clientPermissions(stateModels)
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	name := state.Name.ValueString()
	held, err := heldPermissions(ctx, cl, name)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot read role", err.Error())
		return
	}
	if !client.SamePermissions(held, prior) {
		resp.Diagnostics.AddAttributeError(path.Root("permissions"), "Role changed outside Terraform",
			fmt.Sprintf("The permissions of role %q were changed outside Terraform after the plan (etcd now holds: %s), "+
				"so nothing was changed: the provider never overwrites a change it has not shown you. Run plan "+
				"again to see the current permissions, then apply.", name, describePermissions(held)))
		return
	}

	grant, revoke := client.DiffPermissions(held, desired)
	func() {
		// Grant first: a range whose form or access changes never loses
		// its access in between.
		for _, p := range grant {
			if err := cl.GrantPermission(ctx, name, p); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("permissions"), "Cannot grant permission", err.Error())
				return
			}
		}
		for _, p := range revoke {
			if err := cl.RevokePermission(ctx, name, p); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("permissions"), "Cannot revoke permission", err.Error())
				return
			}
		}
	}()
	tflog.Debug(ctx, "updated etcd role", map[string]any{"role": name, "granted": len(grant), "revoked": len(revoke)})
	r.readInto(ctx, cl, &plan, planModels, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", plan.Name.ValueString())...)
}

func (r *roleResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state roleResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if state.KeepOnDestroy.ValueBool() && !resp.Diagnostics.HasError() {
		tflog.Info(ctx, "keep_on_destroy: leaving the etcd role in place", map[string]any{"role": state.Name.ValueString()})
		return
	}
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.Name.ValueString()
	if name == client.RootName {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "The root role cannot be deleted",
			"The provider does not delete etcd's root role: etcd requires user root to hold it while "+
				"authentication is enabled and before it can be enabled again, so deleting it risks locking "+
				"everyone out. To stop managing it with Terraform without deleting it, remove it from the state "+
				"(terraform state rm etcd_role.NAME, or a removed block on Terraform/OpenTofu 1.7+).")
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := cl.DeleteRole(ctx, name); err != nil && !errors.Is(err, client.ErrRoleNotFound) {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot delete role", err.Error())
	}
}

func (r *roleResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name, diags := importTarget(ctx, req, "name", "app")
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := client.ValidName("role", name); err != nil {
		resp.Diagnostics.AddError("Invalid role name", fmt.Sprintf("Give the name of the etcd role to import, e.g. "+
			"terraform import etcd_role.NAME app: %v.", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("permissions"), permissionSetValue{SetValue: types.SetValueMust(permissionObjectType, nil)})...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", name)...)
}

func describePermissions(ps []client.Permission) string {
	if len(ps) == 0 {
		return "no permissions"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}
