package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
)

var (
	_ resource.Resource                = (*snapshotResource)(nil)
	_ resource.ResourceWithConfigure   = (*snapshotResource)(nil)
	_ resource.ResourceWithImportState = (*snapshotResource)(nil)
	_ validator.String                 = snapshotPathValidator{}
)

// snapshotResource is etcd_snapshot: a consistent snapshot of the cluster,
// taken through the client API into a local file (`etcdctl snapshot save`).
type snapshotResource struct {
	provider *providerData
}

func newSnapshotResource() resource.Resource { return &snapshotResource{} }

type snapshotResourceModel struct {
	ID              types.String `tfsdk:"id"`
	Path            types.String `tfsdk:"path"`
	Triggers        types.Map    `tfsdk:"triggers"`
	DeleteOnDestroy types.Bool   `tfsdk:"delete_on_destroy"`
	SHA256          types.String `tfsdk:"sha256"`
	Revision        types.Int64  `tfsdk:"revision"`
	SizeBytes       types.Int64  `tfsdk:"size_bytes"`
	TotalKeys       types.Int64  `tfsdk:"total_keys"`
	TakenAt         types.String `tfsdk:"taken_at"`
}

func (r *snapshotResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_snapshot"
}

func (r *snapshotResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Computed: true, MarkdownDescription: desc,
			PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()}}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A consistent snapshot of the cluster's data, taken through the client API into a " +
			"local file on the machine running Terraform, as `etcdctl snapshot save` takes it. The file is etcd's " +
			"own snapshot format: `etcdutl snapshot status` and `snapshot restore` (or this provider's binary, " +
			"`terraform-provider-etcd snapshot status|restore`) read it.\n\n" +
			"A snapshot is taken when the resource is created, and again when `triggers` change (typically " +
			"`triggers = { version = var.etcd_version }` before an upgrade). A refresh notices a file that was " +
			"removed or changed (its sha256 differs) and plans a new snapshot. Destroying the resource leaves the " +
			"file in place unless `delete_on_destroy` is true.\n\n" +
			"The file holds every key and value of the cluster, and the users' password hashes: keep it as " +
			"safe as the cluster. It is written with mode 0600.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The snapshot's `path`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"path": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Local file to write the snapshot to. Its directory must exist; the file is " +
					"written under a temporary name, synced and renamed, so it is either the whole snapshot or " +
					"what was there before. Changing it takes a new snapshot.",
				Validators:    []validator.String{snapshotPathValidator{}},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"triggers": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Arbitrary values that take a new snapshot (replacing this one) when they " +
					"change, as `terraform_data`'s `triggers_replace`.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"delete_on_destroy": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Delete the file when the resource is destroyed (or replaced: the new " +
					"snapshot is taken first only with `create_before_destroy`). Defaults to false: the file " +
					"outlives the resource.",
			},
			"sha256": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Hexadecimal sha256 of the whole file, as `sha256sum` prints it.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"revision":   keep("The cluster's revision the snapshot holds (`snapshot status`'s REVISION)."),
			"size_bytes": keep("Size of the file in bytes."),
			"total_keys": keep("Number of keys in the snapshot (`etcdutl snapshot status`'s TOTAL KEYS: live keys)."),
			"taken_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the snapshot was written (the file's modification time), RFC 3339 in UTC.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *snapshotResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *snapshotResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan snapshotResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file := plan.Path.ValueString()
	if err := snapshot.CheckDir(file); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot write the snapshot", err.Error())
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	saved, err := snapshot.Save(ctx, cl.Client, file)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot take the snapshot",
			cl.Describe(err, "take a snapshot into "+file, "").Error())
		return
	}
	tflog.Info(ctx, "saved etcd snapshot", map[string]any{"path": file, "size": saved.Size, "server_version": saved.ServerVersion})
	resp.Diagnostics.Append(describeSnapshot(&plan, file)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// describeSnapshot fills the computed attributes from the file itself:
// etcdutl's status (which also checks the database's integrity), its
// sha256, size and modification time.
func describeSnapshot(m *snapshotResourceModel, file string) (diags diag.Diagnostics) {
	st, err := snapshot.ReadStatus(file)
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot read the snapshot", err.Error())
		return diags
	}
	sum, err := snapshot.FileSHA256(file)
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot read the snapshot", err.Error())
		return diags
	}
	fi, err := os.Stat(file)
	if err != nil {
		diags.AddAttributeError(path.Root("path"), "Cannot read the snapshot", err.Error())
		return diags
	}
	m.ID = types.StringValue(file)
	m.SHA256 = types.StringValue(sum)
	m.Revision = types.Int64Value(st.Revision)
	m.TotalKeys = types.Int64Value(int64(st.TotalKey))
	m.SizeBytes = types.Int64Value(fi.Size())
	m.TakenAt = types.StringValue(fi.ModTime().UTC().Truncate(time.Second).Format(time.RFC3339))
	return diags
}

func (r *snapshotResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state snapshotResourceModel
	resp.Diagnostics.Append(getState(ctx, req.State, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	file := state.Path.ValueString()
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		tflog.Warn(ctx, "etcd snapshot file is gone; removing it from state", map[string]any{"path": file})
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot read the snapshot", err.Error())
		return
	}
	if state.SHA256.IsNull() { // import
		resp.Diagnostics.Append(describeSnapshot(&state, file)...)
		if state.DeleteOnDestroy.IsNull() {
			state.DeleteOnDestroy = types.BoolValue(false)
		}
		resp.Diagnostics.Append(setState(ctx, &resp.State, state)...)
		return
	}
	changed := fi.Size() != state.SizeBytes.ValueInt64()
	if !changed {
		sum, err := snapshot.FileSHA256(file)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot read the snapshot", err.Error())
			return
		}
		changed = sum != state.SHA256.ValueString()
	}
	if changed {
		tflog.Warn(ctx, "etcd snapshot file changed since it was taken; removing it from state", map[string]any{"path": file})
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(setState(ctx, &resp.State, state)...)
}

// Update only records delete_on_destroy; every other attribute replaces
// the snapshot.
func (r *snapshotResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan snapshotResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *snapshotResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state snapshotResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() || !state.DeleteOnDestroy.ValueBool() {
		return
	}
	file := state.Path.ValueString()
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		resp.Diagnostics.AddAttributeError(path.Root("path"), "Cannot delete the snapshot", err.Error())
	}
}

func (r *snapshotResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID == "" {
		resp.Diagnostics.AddError("Invalid snapshot import ID",
			"Import a snapshot by its file's path, e.g. terraform import etcd_snapshot.NAME /var/backups/etcd/before-upgrade.db")
		return
	}
	if _, err := os.Stat(req.ID); err != nil {
		resp.Diagnostics.AddError("Cannot import the snapshot", fmt.Sprintf("%v. Import a snapshot by its file's path.", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("path"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}
