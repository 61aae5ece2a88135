package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
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
	_ resource.Resource                   = (*userResource)(nil)
	_ resource.ResourceWithConfigure      = (*userResource)(nil)
	_ resource.ResourceWithImportState    = (*userResource)(nil)
	_ resource.ResourceWithIdentity       = (*userResource)(nil)
	_ resource.ResourceWithValidateConfig = (*userResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*userResource)(nil)
)

// userResource is etcd_user: one user, its password and its roles.
type userResource struct {
	provider *providerData
}

func newUserResource() resource.Resource { return &userResource{} }

type userResourceModel struct {
	ID                types.String `tfsdk:"id"`
	Name              types.String `tfsdk:"name"`
	Roles             types.Set    `tfsdk:"roles"`
	Password          types.String `tfsdk:"password"`
	PasswordWO        types.String `tfsdk:"password_wo"`
	PasswordWOVersion types.Int64  `tfsdk:"password_wo_version"`
	NoPassword        types.Bool   `tfsdk:"no_password"`
	KeepOnDestroy     types.Bool   `tfsdk:"keep_on_destroy"`
}

func (r *userResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_user"
}

func (r *userResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An etcd user, its password and the roles it holds.\n\n" +
			"Set the password one of three ways:\n\n" +
			"- `password`: works on every Terraform and OpenTofu version; stored in the state (marked sensitive).\n" +
			"- `password_wo` with `password_wo_version`: a write-only argument (Terraform 1.11+, OpenTofu 1.11+). " +
			"It is sent to etcd and never stored in the plan or state, not even as a hash; change " +
			"`password_wo_version` to set a new one.\n" +
			"- `no_password = true`: a user that authenticates with a TLS client certificate whose common name " +
			"(CN) is the user name.\n\n" +
			"Roles granted or revoked outside Terraform show up as a change on the next plan, and an update " +
			"grants and revokes only the difference (it fails, without changing anything, when the roles were " +
			"changed outside Terraform after the plan).\n\n" +
			"**Password drift.** When authentication is enabled and `password` is in the state, reading the user " +
			"checks the password by authenticating as the user once; if etcd rejects it (the password was " +
			"changed outside Terraform) the plan shows `password` changing and apply sets it again. etcd has no " +
			"lock-out of failed attempts, so the check locks nothing, and the password goes only to etcd over " +
			"the provider's connection. With authentication disabled etcd cannot check passwords, and a " +
			"`password_wo` is never known to the provider after apply, so neither is checked.\n\n" +
			"Each check costs the member one bcrypt comparison, so the provider skips it while nothing in the " +
			"cluster's authentication has changed: etcd bumps its auth revision on every change to a user, " +
			"password, role or permission, and the provider records (in private state) the revision at which etcd " +
			"last accepted the password. A refresh then reads the revision with one request. Once it has moved, " +
			"every refresh checks the passwords again until one is saved: an apply's (or `apply -refresh-only`'s) " +
			"is, a plan's is not. On etcd 3.4, which cannot report the revision, every refresh checks.\n\n" +
			"**The provider's own user.** Changing the password of the user the provider connects as (for " +
			"example root) takes effect at once: etcd drops that user's tokens, so later requests of the same run " +
			"fail to authenticate until the provider's `password` matches. Rotate it in an apply of its own, then " +
			"update the provider's password.\n\n" +
			"**Import.** `terraform import etcd_user.NAME alice` reads the user's roles; etcd never reveals a " +
			"password, so none is in the state. With `password` or `password_wo` in the configuration, the next " +
			"apply sets that password; without any of the three arguments the provider leaves the existing " +
			"password alone. etcd does not report whether a user was created without a password, so for an " +
			"imported user `no_password` is taken from the configuration.",
		Attributes: map[string]schema.Attribute{
			"keep_on_destroy": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Destroying the resource (or replacing it, e.g. when `name` changes) only removes " +
					"it from the state and leaves the user in etcd. Set it, and apply, before the destroy. Defaults to " +
					"`false`: destroy deletes the user.",
			},
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The user name, as for `name`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The user name; for certificate authentication, the common name of the user's " +
					"client certificate. Changing it replaces the user.",
				Validators:    []validator.String{nameValidator{kind: "user"}},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"roles": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				Default:     setdefault.StaticValue(stringSet(nil)),
				MarkdownDescription: "Names of the roles the user holds, e.g. `[etcd_role.app.name]` (referencing the " +
					"role makes Terraform create it first). `root` gives full access. Defaults to none.",
				Validators: []validator.Set{setvalidator.ValueStringsAre(nameValidator{kind: "role"})},
			},
			"password": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "The password. Stored in the state (marked sensitive); prefer `password_wo` on " +
					"Terraform/OpenTofu 1.11+. Conflicts with `password_wo` and `no_password`.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
				MarkdownDescription: "The password, write-only: never stored in the plan or state. Needs Terraform " +
					"1.11+ or OpenTofu 1.11+, and `password_wo_version`. Conflicts with `password` and `no_password`.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"password_wo_version": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Version of `password_wo`. The provider cannot see a write-only value change, so " +
					"change this number (e.g. increment it) to set a new `password_wo`. Required with `password_wo`.",
			},
			"no_password": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Create the user without a password, for TLS client certificate authentication " +
					"(the certificate's common name is the user name). etcd fixes this when the user is created, so " +
					"changing it replaces the user. Conflicts with `password` and `password_wo`.",
			},
		},
	}
}

func (r *userResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = stringIdentitySchema("name", "The user name.")
}

func (r *userResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *userResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m userResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var ways []string
	if !m.Password.IsNull() {
		ways = append(ways, "password")
	}
	if !m.PasswordWO.IsNull() {
		ways = append(ways, "password_wo")
	}
	if m.NoPassword.ValueBool() {
		ways = append(ways, "no_password = true")
	}
	if len(ways) > 1 {
		resp.Diagnostics.AddAttributeError(path.Root(attrName(ways[1])), "Conflicting password settings",
			fmt.Sprintf("%s and %s are both set; set one: password, password_wo (with password_wo_version), or "+
				"no_password = true for a user that authenticates with a TLS client certificate.", ways[0], ways[1]))
	}
	switch {
	case !m.PasswordWO.IsNull() && m.PasswordWOVersion.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("password_wo_version"), "Missing password_wo_version",
			"password_wo is write-only, so the provider cannot tell when it changes. Set password_wo_version "+
				"(e.g. 1) and change it whenever password_wo changes.")
	case m.PasswordWO.IsNull() && !m.PasswordWOVersion.IsNull() && !m.PasswordWO.IsUnknown():
		resp.Diagnostics.AddAttributeError(path.Root("password_wo"), "Missing password_wo",
			"password_wo_version is set but password_wo is not; set password_wo, or remove password_wo_version.")
	}
	if m.NoPassword.ValueBool() && !m.PasswordWOVersion.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("password_wo_version"), "Conflicting password settings",
			"password_wo_version is set on a user without a password (no_password = true); remove it.")
	}
}

func attrName(way string) string {
	if way == "no_password = true" {
		return "no_password"
	}
	return way
}

// passwordKnown tells whether the state shows how the user was created
// (with or without a password): a freshly imported user's shows nothing.
func (m userResourceModel) passwordKnown() bool {
	return !m.NoPassword.IsNull() || !m.Password.IsNull() || !m.PasswordWOVersion.IsNull()
}

func (r *userResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan userResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() {
		// Create: etcd needs a password or the explicit choice of none.
		if plan.Password.IsNull() && plan.PasswordWOVersion.IsNull() && plan.NoPassword.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("password"), "Missing password",
				"A new etcd user needs a password: set password, or password_wo with password_wo_version "+
					"(Terraform/OpenTofu 1.11+), or no_password = true for a user that authenticates with a TLS "+
					"client certificate whose common name is the user name.")
		}
		if !plan.NoPassword.IsNull() && !plan.NoPassword.ValueBool() && plan.Password.IsNull() && plan.PasswordWOVersion.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("no_password"), "Missing password",
				"no_password = false needs a password: set password, or password_wo with password_wo_version.")
		}
		return
	}
	var state userResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || plan.NoPassword.IsUnknown() {
		return
	}
	// etcd fixes "no password" when it creates the user: changing it
	// means a new user. An imported user's state does not say, so there
	// the configuration is taken as is.
	if state.passwordKnown() && state.NoPassword.ValueBool() != plan.NoPassword.ValueBool() {
		resp.RequiresReplace = append(resp.RequiresReplace, path.Root("no_password"))
	}
}

// passwordToSet returns the password an apply must set: the configured
// password when it differs from the state, or password_wo when it is new or
// its version changed; "" when the password stays as it is.
func passwordToSet(ctx context.Context, plan, state *userResourceModel, cfg func(context.Context, path.Path, any) diag.Diagnostics) (string, diag.Diagnostics) {
	var diags diag.Diagnostics
	switch {
	case plan.NoPassword.ValueBool():
		return "", diags
	case !plan.Password.IsNull():
		if state == nil || state.Password.IsNull() || !state.Password.Equal(plan.Password) {
			return plan.Password.ValueString(), diags
		}
	case !plan.PasswordWOVersion.IsNull():
		if state == nil || !state.PasswordWOVersion.Equal(plan.PasswordWOVersion) {
			var wo types.String
			diags.Append(cfg(ctx, path.Root("password_wo"), &wo)...)
			if !diags.HasError() && (wo.IsNull() || wo.IsUnknown() || wo.ValueString() == "") {
				diags.AddAttributeError(path.Root("password_wo"), "Missing password_wo",
					"password_wo_version changed but password_wo has no value. Set password_wo to the new password.")
			}
			return wo.ValueString(), diags
		}
	}
	return "", diags
}

func (r *userResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan userResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	password, diags := passwordToSet(ctx, &plan, nil, req.Config.GetAttribute)
	resp.Diagnostics.Append(diags...)
	var roles []string
	resp.Diagnostics.Append(plan.Roles.ElementsAs(ctx, &roles, false)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	name := plan.Name.ValueString()
	err := cl.CreateUser(ctx, name, password, plan.NoPassword.ValueBool())
	switch {
	case errors.Is(err, client.ErrUserExists):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "User already exists",
			fmt.Sprintf("The user %q already exists in etcd, and the provider does not take over users it did not "+
				"create. To manage it with Terraform, import it (replace NAME with this resource's name):\n\n"+
				"    terraform import etcd_user.NAME %s\n\nthen apply to set the configured password, or choose "+
				"another name.", name, shell.Quote(name)))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot create user", err.Error())
		return
	}
	slices.Sort(roles)
	for _, role := range roles {
		if err := cl.GrantRole(ctx, name, role); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("roles"), "Cannot grant role", err.Error())
			break
		}
	}
	// Record the user also after a failed grant: it exists (and is then
	// tainted and replaced).
	r.readRoles(ctx, cl, &plan, &resp.Diagnostics)
	plan.PasswordWO = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", name)...)
	tflog.Debug(ctx, "created etcd user", map[string]any{"user": name, "roles": roles})
}

func (r *userResource) readRoles(ctx context.Context, cl *client.Client, m *userResourceModel, diags *diag.Diagnostics) {
	name := m.Name.ValueString()
	held, err := cl.GetUser(ctx, name)
	if err != nil {
		diags.AddAttributeError(path.Root("roles"), "Cannot read user", err.Error())
		return
	}
	m.ID = types.StringValue(name)
	m.Roles = stringSet(held)
}

func (r *userResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state userResourceModel
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

	name := state.Name.ValueString()
	held, err := cl.GetUser(ctx, name)
	switch {
	case errors.Is(err, client.ErrUserNotFound):
		tflog.Warn(ctx, "etcd user deleted outside Terraform; removing it from state", map[string]any{"user": name})
		resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", state.Name.ValueString())...) // the framework wants one
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot read user", err.Error())
		return
	}
	state.ID = types.StringValue(name)
	state.Roles = stringSet(held)
	state.PasswordWO = types.StringNull()

	if !state.Password.IsNull() && !state.NoPassword.ValueBool() {
		res, diags, err := checkUserPassword(ctx, cl, name, state.Password.ValueString(), req.Private, resp.Private)
		resp.Diagnostics.Append(diags...)
		switch {
		case err != nil:
			resp.Diagnostics.AddAttributeWarning(path.Root("password"), "Cannot check password",
				fmt.Sprintf("The password of user %q could not be checked, so a change made outside Terraform "+
					"would not show: %v", name, err))
		case res == client.PasswordDiffers:
			// The plan then shows password changing, and apply sets it.
			tflog.Info(ctx, "etcd rejected the password in state: it was changed outside Terraform", map[string]any{"user": name})
			state.Password = types.StringNull()
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", state.Name.ValueString())...)
}

func (r *userResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state userResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	password, diags := passwordToSet(ctx, &plan, &state, req.Config.GetAttribute)
	resp.Diagnostics.Append(diags...)
	var desired, prior []string
	resp.Diagnostics.Append(plan.Roles.ElementsAs(ctx, &desired, false)...)
	resp.Diagnostics.Append(state.Roles.ElementsAs(ctx, &prior, false)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	name := state.Name.ValueString()
	held, err := cl.GetUser(ctx, name)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot read user", err.Error())
		return
	}
	if add, remove := client.DiffNames(held, prior); len(add)+len(remove) > 0 {
		resp.Diagnostics.AddAttributeError(path.Root("roles"), "User changed outside Terraform",
			fmt.Sprintf("The roles of user %q were changed outside Terraform after the plan (etcd now holds %q), so "+
				"nothing was changed: the provider never overwrites a change it has not shown you. Run plan again "+
				"to see the current roles, then apply.", name, held))
		return
	}

	grant, revoke := client.DiffNames(held, desired)
	func() {
		if password != "" {
			if err := cl.ChangePassword(ctx, name, password); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("password"), "Cannot change password", err.Error())
				// The state must not claim a password etcd does not hold.
				plan.Password = state.Password
				plan.PasswordWOVersion = state.PasswordWOVersion
				return
			}
		}
		for _, role := range grant {
			if err := cl.GrantRole(ctx, name, role); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("roles"), "Cannot grant role", err.Error())
				return
			}
		}
		for _, role := range revoke {
			if err := cl.RevokeRole(ctx, name, role); err != nil {
				detail := err.Error()
				if errors.Is(err, client.ErrRootProtected) {
					detail = fmt.Sprintf("etcd does not let user %q lose the root role while authentication is enabled "+
						"(that would leave nobody able to administer the cluster). Disable authentication first "+
						"(destroy etcd_auth), or keep the role.", name)
				}
				resp.Diagnostics.AddAttributeError(path.Root("roles"), "Cannot revoke role", detail)
				return
			}
		}
	}()
	tflog.Debug(ctx, "updated etcd user", map[string]any{"user": name, "granted": grant, "revoked": revoke, "password_changed": password != ""})
	r.readRoles(ctx, cl, &plan, &resp.Diagnostics)
	plan.PasswordWO = types.StringNull()
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", plan.Name.ValueString())...)
}

func (r *userResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state userResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if state.KeepOnDestroy.ValueBool() && !resp.Diagnostics.HasError() {
		tflog.Info(ctx, "keep_on_destroy: leaving the etcd user in place", map[string]any{"user": state.Name.ValueString()})
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.Name.ValueString()
	err := cl.DeleteUser(ctx, name)
	switch {
	case err == nil, errors.Is(err, client.ErrUserNotFound):
	case errors.Is(err, client.ErrRootProtected):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot delete user root",
			"etcd refuses to delete user root while authentication is enabled. Disable authentication first: "+
				"make the etcd_auth resource depend on this user (depends_on = [etcd_user.root]) so that Terraform "+
				"destroys etcd_auth, which disables authentication, before it deletes root.")
	default:
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot delete user", err.Error())
	}
}

func (r *userResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	name, diags := importTarget(ctx, req, "name", "app")
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := client.ValidName("user", name); err != nil {
		resp.Diagnostics.AddError("Invalid user name", fmt.Sprintf("Give the name of the etcd user to import, e.g. "+
			"terraform import etcd_user.NAME alice: %v.", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "name", name)...)
}
