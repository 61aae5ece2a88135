package provider

import (
	"context"
	"encoding/base64"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ datasource.DataSource                     = (*keysDataSource)(nil)
	_ datasource.DataSourceWithConfigure        = (*keysDataSource)(nil)
	_ datasource.DataSourceWithConfigValidators = (*keysDataSource)(nil)
)

// keysDataSource is etcd_keys: a range of keys, as `etcdctl get` reads it.
type keysDataSource struct {
	provider *providerData
}

func newKeysDataSource() datasource.DataSource { return &keysDataSource{} }

type keysDataSourceModel struct {
	Prefix         types.String `tfsdk:"prefix"`
	Key            types.String `tfsdk:"key"`
	RangeEnd       types.String `tfsdk:"range_end"`
	Limit          types.Int64  `tfsdk:"limit"`
	KeysOnly       types.Bool   `tfsdk:"keys_only"`
	Revision       types.Int64  `tfsdk:"revision"`
	Keys           types.List   `tfsdk:"keys"`
	HeaderRevision types.Int64  `tfsdk:"header_revision"`
	TotalCount     types.Int64  `tfsdk:"total_count"`
	More           types.Bool   `tfsdk:"more"`
}

var keysDataSourceKeyType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"key":             types.StringType,
	"key_base64":      types.StringType,
	"value":           types.StringType,
	"value_base64":    types.StringType,
	"create_revision": types.Int64Type,
	"mod_revision":    types.Int64Type,
	"version":         types.Int64Type,
	"lease":           types.StringType,
}}

func (d *keysDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_keys"
}

func (d *keysDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a range of keys, as `etcdctl get` does: every key under a `prefix`, or the " +
			"keys from `key` up to `range_end`. Set exactly one of `prefix` and `key`. The keys are sorted by " +
			"key and read in one request, at one revision.",
		Attributes: map[string]schema.Attribute{
			"prefix": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Read every key that begins with this, e.g. `/app/` (`etcdctl get --prefix`). " +
					"The empty string reads the whole key space.",
			},
			"key": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Read this key, or with `range_end` the keys from it (inclusive) to " +
					"`range_end` (exclusive).",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"range_end": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "End of the range (exclusive), used with `key`. `\"\\u0000\"` reads every key " +
					"from `key` on (`etcdctl get --from-key`); `provider::etcd::prefix_range_end(p)` gives the end " +
					"that covers prefix `p`.",
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					stringvalidator.AlsoRequires(path.MatchRoot("key")),
				},
			},
			"limit": schema.Int64Attribute{
				Optional:            true,
				MarkdownDescription: "Return at most this many keys (the first ones by key). `total_count` and `more` tell whether there are more.",
				Validators:          []validator.Int64{int64validator.AtLeast(1)},
			},
			"keys_only": schema.BoolAttribute{
				Optional:            true,
				MarkdownDescription: "Read the keys and their metadata without values (`etcdctl get --keys-only`).",
			},
			"revision": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Read the keys as they were at this revision (`etcdctl get --rev`). It must not be " +
					"compacted yet. Unset: the current revision.",
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"keys": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The keys read, sorted by key.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"key": schema.StringAttribute{
						Computed:            true,
						MarkdownDescription: "The key; null when it is not valid UTF-8 (then see `key_base64`).",
					},
					"key_base64": schema.StringAttribute{
						Computed:            true,
						MarkdownDescription: "The key as standard base64.",
					},
					"value": schema.StringAttribute{
						Computed:            true,
						MarkdownDescription: "The value as text; null when it is not valid UTF-8 or with `keys_only`.",
					},
					"value_base64": schema.StringAttribute{
						Computed:            true,
						MarkdownDescription: "The value as standard base64; null with `keys_only`.",
					},
					"create_revision": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Revision at which the key was created.",
					},
					"mod_revision": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Revision at which the key was last written.",
					},
					"version": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Number of writes since the key was created.",
					},
					"lease": schema.StringAttribute{
						Computed:            true,
						MarkdownDescription: "ID of the key's lease in hexadecimal; null when it has none.",
					},
				}},
			},
			"header_revision": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "The cluster's revision when it answered (the response header's revision).",
			},
			"total_count": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Number of keys in the range, which is more than returned when `limit` cuts it short.",
			},
			"more": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the range holds more keys than were returned.",
			},
		},
	}
}

func (d *keysDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{
		datasourcevalidator.ExactlyOneOf(path.MatchRoot("prefix"), path.MatchRoot("key")),
	}
}

func (d *keysDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *keysDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m keysDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	r := client.Range{
		Limit:    m.Limit.ValueInt64(),
		Revision: m.Revision.ValueInt64(),
		KeysOnly: m.KeysOnly.ValueBool(),
	}
	attrPath := path.Root("key")
	if !m.Prefix.IsNull() {
		attrPath = path.Root("prefix")
		r.Key, r.End = m.Prefix.ValueString(), client.PrefixRangeEnd(m.Prefix.ValueString())
		if r.Key == "" { // etcd's spelling of "every key"
			r.Key = client.NoPrefixEnd
		}
	} else {
		r.Key, r.End = m.Key.ValueString(), m.RangeEnd.ValueString()
	}
	res, err := cl.GetRange(ctx, r)
	if err != nil {
		if r.Revision > 0 {
			attrPath = path.Root("revision")
		}
		resp.Diagnostics.AddAttributeError(attrPath, "Cannot read keys", err.Error())
		return
	}

	elems := make([]attr.Value, len(res.Kvs))
	for i, kv := range res.Kvs {
		obj := map[string]attr.Value{
			"key":             types.StringNull(),
			"key_base64":      types.StringValue(base64.StdEncoding.EncodeToString([]byte(kv.Key))),
			"value":           types.StringNull(),
			"value_base64":    types.StringNull(),
			"create_revision": types.Int64Value(kv.CreateRevision),
			"mod_revision":    types.Int64Value(kv.ModRevision),
			"version":         types.Int64Value(kv.Version),
			"lease":           types.StringNull(),
		}
		if utf8.ValidString(kv.Key) {
			obj["key"] = types.StringValue(kv.Key)
		}
		if !r.KeysOnly {
			obj["value_base64"] = types.StringValue(base64.StdEncoding.EncodeToString(kv.Value))
			if utf8.Valid(kv.Value) {
				obj["value"] = types.StringValue(string(kv.Value))
			}
		}
		if kv.Lease != 0 {
			obj["lease"] = types.StringValue(client.FormatLeaseID(kv.Lease))
		}
		elems[i] = types.ObjectValueMust(keysDataSourceKeyType.AttrTypes, obj)
	}
	m.Keys = types.ListValueMust(keysDataSourceKeyType, elems)
	m.HeaderRevision = types.Int64Value(res.Revision)
	m.TotalCount = types.Int64Value(res.Count)
	m.More = types.BoolValue(res.More)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
