package provider

// Migration from Ferlab-Ste-Justine/terraform-provider-etcd (an SDKv2
// provider) by `moved` blocks: OpenTofu 1.10+ and Terraform 1.8+ hand the
// source resource's state to the target resource's MoveState, which turns it
// into ours without touching etcd. The next plan refreshes the moved
// resource from etcd, so only what identifies the object and what the
// source meant by its settings is carried over; computed attributes are
// left null for that refresh to fill.
//
// The source states are SDKv2 schema version 0, as JSON:
//
//	etcd_key         id, key, value, clear_on_deletion (false: our
//	                 keep_on_destroy)
//	etcd_key_prefix  id, prefix, keys (set of {key, value}, key relative to
//	                 prefix), clear_on_deletion
//	etcd_role        id, name, permissions (set of {key, range_end,
//	                 permission}; range_end = key means that one key)
//	etcd_user        id, username, password, roles
//
// Their other types (etcd_auth, etcd_range_scoped_state,
// etcd_synchronized_directory, etcd_synchronized_key_prefixes) have no
// state-for-state equivalent; a moved block from one of them is an error
// that says what to do instead (docs/guides/migrating.md).

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ resource.ResourceWithMoveState = (*keyResource)(nil)
	_ resource.ResourceWithMoveState = (*keyPrefixResource)(nil)
	_ resource.ResourceWithMoveState = (*roleResource)(nil)
	_ resource.ResourceWithMoveState = (*userResource)(nil)
)

// ferlabNamespaceType is the source provider's namespace/type, on any
// registry host (registry.terraform.io or registry.opentofu.org).
const ferlabNamespaceType = "ferlab-ste-justine/etcd"

// migratingGuide is where the error for an unsupported move points.
const migratingGuide = "the guide \"Migrating from other etcd providers\" (docs/guides/migrating.md)"

// isFerlab reports whether a provider address (host/namespace/type) is
// Ferlab's provider.
func isFerlab(addr string) bool {
	addr = strings.ToLower(addr)
	return addr == ferlabNamespaceType || strings.HasSuffix(addr, "/"+ferlabNamespaceType)
}

// ferlabMover builds the StateMover for one of our types. It acts only on
// moves from Ferlab's provider: a move from any other provider is left to
// the framework, which reports that the type cannot be moved. From Ferlab's
// provider, a source of type sourceType is converted by convert; any other
// source type is an error naming both types.
func ferlabMover(targetType, sourceType string, convert func(ctx context.Context, raw []byte, resp *resource.MoveStateResponse) diag.Diagnostics) resource.StateMover {
	return resource.StateMover{
		StateMover: func(ctx context.Context, req resource.MoveStateRequest, resp *resource.MoveStateResponse) {
			if !isFerlab(req.SourceProviderAddress) {
				return
			}
			if req.SourceTypeName != sourceType {
				resp.Diagnostics.AddError("Cannot move this resource type",
					fmt.Sprintf("A moved block moves %s of %s to %s. That source type has no equivalent state in "+
						"this provider's %s, so it cannot be moved. Only %s moves to %s. Remove the moved block, "+
						"run `state rm` on the old resource (etcd is not touched), and write the configuration "+
						"that replaces it: %s shows the equivalent of each type.",
						req.SourceTypeName, req.SourceProviderAddress, targetType, targetType, sourceType,
						targetType, migratingGuide))
				return
			}
			if req.SourceSchemaVersion != 0 {
				resp.Diagnostics.AddError("Cannot move this resource",
					fmt.Sprintf("The state of %s %s has schema version %d; this provider knows how to move "+
						"version 0 only. Please report the provider version you move from.",
						req.SourceProviderAddress, sourceType, req.SourceSchemaVersion))
				return
			}
			if req.SourceRawState == nil || len(req.SourceRawState.JSON) == 0 {
				resp.Diagnostics.AddError("Cannot move this resource",
					fmt.Sprintf("The state of %s %s was given in the legacy flat format, which this provider "+
						"cannot read. Run a plan with that provider's last version first, so that the state is "+
						"written as JSON, then move.", req.SourceProviderAddress, sourceType))
				return
			}
			resp.Diagnostics.Append(convert(ctx, req.SourceRawState.JSON, resp)...)
		},
	}
}

// decodeSource unmarshals a source state into v and requires its
// attribute named required, which identifies the object, to be a
// non-empty string. Errors name the source type.
func decodeSource(raw []byte, sourceType, required string, v any) diag.Diagnostics {
	var diags diag.Diagnostics
	var attrs map[string]any
	err := json.Unmarshal(raw, v)
	if err == nil {
		err = json.Unmarshal(raw, &attrs)
	}
	if err != nil {
		diags.AddError("Cannot move this resource",
			fmt.Sprintf("The %s state to move is not the expected JSON: %s.", sourceType, err))
		return diags
	}
	if id, _ := attrs[required].(string); id == "" {
		diags.AddError("Cannot move this resource",
			fmt.Sprintf("The %s state to move has no %s.", sourceType, required))
	}
	return diags
}

// setAll sets the attributes of a moved state, in a fixed order.
func setAll(ctx context.Context, resp *resource.MoveStateResponse, attrs map[string]attr.Value) diag.Diagnostics {
	var diags diag.Diagnostics
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		diags.Append(resp.TargetState.SetAttribute(ctx, path.Root(name), attrs[name])...)
	}
	return diags
}

// keepOnDestroy maps Ferlab's clear_on_deletion (default true) to
// keep_on_destroy: null, our default (destroy deletes), when it is true or
// unset; true when it is false.
func keepOnDestroy(clearOnDeletion *bool) types.Bool {
	if clearOnDeletion == nil || *clearOnDeletion {
		return types.BoolNull()
	}
	return types.BoolValue(true)
}

func (r *keyResource) MoveState(context.Context) []resource.StateMover {
	return []resource.StateMover{ferlabMover("etcd_key", "etcd_key", func(ctx context.Context, raw []byte, resp *resource.MoveStateResponse) diag.Diagnostics {
		var src struct {
			Key             string `json:"key"`
			Value           string `json:"value"`
			ClearOnDeletion *bool  `json:"clear_on_deletion"`
		}
		diags := decodeSource(raw, "etcd_key", "key", &src)
		if diags.HasError() {
			return diags
		}
		return setAll(ctx, resp, map[string]attr.Value{
			"id":              types.StringValue(src.Key),
			"key":             types.StringValue(src.Key),
			"value":           types.StringValue(src.Value),
			"keep_on_destroy": keepOnDestroy(src.ClearOnDeletion),
		})
	})}
}

func (r *keyPrefixResource) MoveState(context.Context) []resource.StateMover {
	return []resource.StateMover{ferlabMover("etcd_key_prefix", "etcd_key_prefix", func(ctx context.Context, raw []byte, resp *resource.MoveStateResponse) diag.Diagnostics {
		var src struct {
			Prefix string `json:"prefix"`
			Keys   []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"keys"`
			ClearOnDeletion *bool `json:"clear_on_deletion"`
		}
		diags := decodeSource(raw, "etcd_key_prefix", "prefix", &src)
		if diags.HasError() {
			return diags
		}
		values := make(map[string]attr.Value, len(src.Keys))
		for _, kv := range src.Keys {
			values[kv.Key] = types.StringValue(kv.Value)
		}
		// Ferlab's etcd_key_prefix owns the whole prefix: every apply deletes
		// the keys under it that are not configured. delete_unmanaged is
		// that behaviour here. With clear_on_deletion = false it leaves the
		// keys at destroy: keep_on_destroy, which this provider does not
		// combine with delete_unmanaged, so the keys it does not manage are
		// then left alone.
		keep := keepOnDestroy(src.ClearOnDeletion)
		return setAll(ctx, resp, map[string]attr.Value{
			"id":               types.StringValue(src.Prefix),
			"prefix":           types.StringValue(src.Prefix),
			"values":           types.MapValueMust(types.StringType, values),
			"values_base64":    types.MapNull(types.StringType),
			"delete_unmanaged": types.BoolValue(keep.IsNull()),
			"keep_on_destroy":  keep,
			"max_txn_ops":      types.Int64Value(client.DefaultMaxTxnOps),
		})
	})}
}

func (r *roleResource) MoveState(context.Context) []resource.StateMover {
	return []resource.StateMover{ferlabMover("etcd_role", "etcd_role", func(ctx context.Context, raw []byte, resp *resource.MoveStateResponse) diag.Diagnostics {
		var src struct {
			Name        string `json:"name"`
			Permissions []struct {
				Key        string `json:"key"`
				RangeEnd   string `json:"range_end"`
				Permission string `json:"permission"`
			} `json:"permissions"`
		}
		diags := decodeSource(raw, "etcd_role", "name", &src)
		if diags.HasError() {
			return diags
		}
		elems := make([]attr.Value, 0, len(src.Permissions))
		for _, p := range src.Permissions {
			access := client.Access(p.Permission)
			if access != client.AccessRead && access != client.AccessWrite && access != client.AccessReadWrite {
				diags.AddError("Cannot move this resource",
					fmt.Sprintf("The etcd_role %q state to move has a permission on %q of %q; the known ones are "+
						"read, write and readwrite.", src.Name, p.Key, p.Permission))
				continue
			}
			rangeEnd := p.RangeEnd
			if rangeEnd == p.Key {
				// Ferlab writes a single key as range_end = key.
				rangeEnd = ""
			}
			m := canonicalPermission(client.Permission{KeyRange: client.KeyRange{Key: p.Key, RangeEnd: rangeEnd}, Access: access})
			obj, d := types.ObjectValueFrom(ctx, permissionAttrTypes, m)
			diags.Append(d...)
			elems = append(elems, obj)
		}
		if diags.HasError() {
			return diags
		}
		set, d := types.SetValue(permissionObjectType, elems)
		diags.Append(d...)
		if diags.HasError() {
			return diags
		}
		return setAll(ctx, resp, map[string]attr.Value{
			"id":          types.StringValue(src.Name),
			"name":        types.StringValue(src.Name),
			"permissions": permissionSetValue{SetValue: set},
		})
	})}
}

func (r *userResource) MoveState(context.Context) []resource.StateMover {
	return []resource.StateMover{ferlabMover("etcd_user", "etcd_user", func(ctx context.Context, raw []byte, resp *resource.MoveStateResponse) diag.Diagnostics {
		var src struct {
			Username string   `json:"username"`
			Password string   `json:"password"`
			Roles    []string `json:"roles"`
		}
		diags := decodeSource(raw, "etcd_user", "username", &src)
		if diags.HasError() {
			return diags
		}
		password, noPassword := types.StringValue(src.Password), types.BoolNull()
		if src.Password == "" {
			// Ferlab creates a user without a password for certificate
			// authentication when password is omitted.
			password, noPassword = types.StringNull(), types.BoolValue(true)
		}
		return setAll(ctx, resp, map[string]attr.Value{
			"id":                  types.StringValue(src.Username),
			"name":                types.StringValue(src.Username),
			"roles":               stringSet(src.Roles),
			"password":            password,
			"password_wo":         types.StringNull(),
			"password_wo_version": types.Int64Null(),
			"no_password":         noPassword,
		})
	})}
}
