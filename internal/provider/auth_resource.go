package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ resource.Resource                = (*authResource)(nil)
	_ resource.ResourceWithConfigure   = (*authResource)(nil)
	_ resource.ResourceWithImportState = (*authResource)(nil)
)

// authID is the ID of the one etcd_auth a cluster can have.
const authID = "auth"

// authResource is etcd_auth: authentication switched on for the cluster.
type authResource struct {
	provider *providerData
}

func newAuthResource() resource.Resource { return &authResource{} }

type authResourceModel struct {
	ID      types.String `tfsdk:"id"`
	Enabled types.Bool   `tfsdk:"enabled"`
}

func (r *authResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_auth"
}

func (r *authResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Turns on etcd authentication for the cluster; destroying it turns authentication off. " +
			"A cluster has one: declare it once.\n\n" +
			"Enabling cannot lock you out: before it enables authentication the provider checks that a user " +
			"`root` exists and holds the role `root`, and that the provider itself connects as a user holding " +
			"the role `root` (its `username`, or the common name of its client certificate). If not, it refuses " +
			"and says what to create. etcd cannot check a password while authentication is off, so right after " +
			"enabling the provider makes one request with its own credentials and reports at once if they are " +
			"rejected.\n\n" +
			"**In one configuration with users, roles and keys** (see the example):\n\n" +
			"1. Configure the provider with root's credentials (`username = \"root\"` and root's password, or a " +
			"client certificate with CN `root`). While authentication is off, etcd accepts them and ignores them; " +
			"once it is on, the provider authenticates with them.\n" +
			"2. Declare `etcd_user.root` with `roles = [\"root\"]` and its password (the same as the provider's).\n" +
			"3. Make `etcd_auth` depend on it: `depends_on = [etcd_user.root]`.\n" +
			"4. Make the other roles, users and keys depend on `etcd_auth`, so that on destroy they are removed " +
			"while root can still act, then authentication is disabled, then root is deleted (etcd refuses to " +
			"delete root while authentication is on).\n\n" +
			"Destroy needs root: the provider must still connect as a user with the role `root`. An `etcd_auth` " +
			"whose authentication was disabled outside Terraform shows `enabled` changing back to true.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Always `auth`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"enabled": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
				MarkdownDescription: "Whether authentication is enabled. Only `true` is accepted (the default); to turn " +
					"authentication off, remove the resource.",
				Validators: []validator.Bool{onlyTrueValidator{}},
			},
		},
	}
}

func (r *authResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

// enable turns authentication on after the lock-out checks, adding
// diagnostics that say what to do. It reports whether auth is on after.
func (r *authResource) enable(ctx context.Context, cl *client.Client, diags *diag.Diagnostics) bool {
	identity := ""
	if r.provider != nil && r.provider.settings != nil {
		identity = r.provider.settings.Identity()
	}
	err := cl.EnableAuth(ctx, identity)
	var notReady *client.AuthNotReadyError
	switch {
	case err == nil:
		tflog.Info(ctx, "enabled etcd authentication", map[string]any{"provider_user": identity})
		return true
	case errors.As(err, &notReady):
		diags.AddAttributeError(path.Root("enabled"), "Authentication not enabled: it would lock you out", notReadyDetail(notReady))
		return false
	case errors.Is(err, client.ErrEnabledButRejected):
		diags.AddAttributeError(path.Root("enabled"), "Authentication enabled, but the provider's credentials are rejected", err.Error())
		return true
	}
	diags.AddAttributeError(path.Root("enabled"), "Cannot enable authentication", err.Error())
	return false
}

func notReadyDetail(e *client.AuthNotReadyError) string {
	const rootUser = "\n\n    resource \"etcd_user\" \"root\" {\n      name     = \"root\"\n      password = var.etcd_root_password # the provider's password\n      roles    = [\"root\"]\n    }\n\n"
	switch {
	case e.NoRootUser:
		return "No user \"root\" exists, and etcd requires one holding the role \"root\" before authentication can be " +
			"enabled (it is the only user that can administer the cluster, and disable authentication again). " +
			"Create it first, and make etcd_auth depend on it:" + rootUser +
			"with depends_on = [etcd_user.root] in etcd_auth, and the provider's username = \"root\" and password " +
			"set to the same password. Nothing was changed."
	case e.RootLacksRole:
		return "User \"root\" exists but does not hold the role \"root\", which etcd requires before authentication " +
			"can be enabled. Grant it (roles = [\"root\"] on etcd_user.root, or etcdctl user grant-role root root) " +
			"and make etcd_auth depend on that. Nothing was changed."
	case e.NoIdentity:
		return "The provider connects without a username or client certificate. Once authentication is enabled it " +
			"could no longer manage users, roles or keys, nor disable authentication on destroy. Set the provider's " +
			"username = \"root\" and password to root's (or use a client certificate whose common name is root) " +
			"before enabling authentication. Nothing was changed."
	}
	return fmt.Sprintf("The provider connects as user %q, which does not exist or does not hold the role \"root\". "+
		"Once authentication is enabled it could no longer manage users and roles nor disable authentication on "+
		"destroy. Connect as root (username = \"root\" with root's password, or a client certificate with common "+
		"name root), or grant %q the role root first. Nothing was changed.", e.Identity, e.Identity)
}

func (r *authResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	enabled, _, err := cl.AuthState(ctx)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("enabled"), "Cannot read authentication status", err.Error())
		return
	}
	if enabled {
		resp.Diagnostics.AddAttributeError(path.Root("enabled"), "Authentication already enabled",
			"Authentication is already enabled on this cluster, and the provider does not take over what it did not "+
				"create: destroying this resource would disable it. To manage it with Terraform anyway, import it "+
				"(replace NAME with this resource's name):\n\n    terraform import etcd_auth.NAME auth")
		return
	}
	if !r.enable(ctx, cl, &resp.Diagnostics) {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, authResourceModel{ID: types.StringValue(authID), Enabled: types.BoolValue(true)})...)
}

func (r *authResource) Read(ctx context.Context, _ resource.ReadRequest, resp *resource.ReadResponse) {
	if r.provider.keepStateUnconfigured(&resp.Diagnostics) {
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	enabled, _, err := cl.AuthState(ctx)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("enabled"), "Cannot read authentication status", err.Error())
		return
	}
	if !enabled {
		tflog.Warn(ctx, "etcd authentication was disabled outside Terraform")
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, authResourceModel{ID: types.StringValue(authID), Enabled: types.BoolValue(enabled)})...)
}

func (r *authResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	enabled, _, err := cl.AuthState(ctx)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("enabled"), "Cannot read authentication status", err.Error())
		return
	}
	if !enabled && !r.enable(ctx, cl, &resp.Diagnostics) {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, authResourceModel{ID: types.StringValue(authID), Enabled: types.BoolValue(true)})...)
}

func (r *authResource) Delete(ctx context.Context, _ resource.DeleteRequest, resp *resource.DeleteResponse) {
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := cl.DisableAuth(ctx); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("enabled"), "Cannot disable authentication",
			err.Error()+". Disabling authentication needs the role root: configure the provider as root.")
		return
	}
	tflog.Info(ctx, "disabled etcd authentication")
}

func (r *authResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID != authID {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("A cluster has one authentication setting; import it with the ID %q: terraform import etcd_auth.NAME auth (got %q).", authID, req.ID))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), authID)...)
}
