package provider

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// Attribute validators shared by the provider, resources and data sources.
// Each checks a known value only; unknown and null values pass.

var (
	_ validator.String = durationValidator{}
	_ validator.String = endpointValidator{}
	_ validator.String = leaseIDValidator{}
	_ validator.String = base64Validator{}
	_ validator.List   = endpointsNotEmptyValidator{}
)

// endpointsNotEmptyValidator rejects `endpoints = []`, which would silently
// fall back to ETCDCTL_ENDPOINTS.
type endpointsNotEmptyValidator struct{}

func (endpointsNotEmptyValidator) Description(context.Context) string {
	return "at least one endpoint"
}

func (v endpointsNotEmptyValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (endpointsNotEmptyValidator) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || len(req.ConfigValue.Elements()) > 0 {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "No etcd endpoints",
		fmt.Sprintf("%s is an empty list: list at least one client URL, e.g. [\"https://10.0.0.1:2379\"], or "+
			"remove the attribute to use %s.", req.Path, client.EnvEndpoints))
}

// durationValidator accepts a positive Go duration such as "5s".
type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return `a positive Go duration, e.g. "5s", "500ms" or "1m"`
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := client.ParseTimeout(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// endpointValidator accepts one etcd client URL.
type endpointValidator struct{}

func (endpointValidator) Description(context.Context) string {
	return "an etcd client URL such as https://10.0.0.1:2379"
}

func (v endpointValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (endpointValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := client.ValidateEndpoint(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid etcd endpoint", fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// leaseIDValidator accepts a lease ID in etcdctl's hexadecimal form.
type leaseIDValidator struct{}

func (leaseIDValidator) Description(context.Context) string {
	return `a lease ID in hexadecimal as printed by etcdctl, e.g. "694d7c8c1f0c7a0b"`
}

func (v leaseIDValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (leaseIDValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := client.ParseLeaseID(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid lease ID", fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// base64Validator accepts standard, padded base64 in canonical form, so that
// what the provider reads back (base64 of the stored bytes) is the same
// string and no diff appears after apply.
type base64Validator struct{}

func (base64Validator) Description(context.Context) string {
	return "standard base64 with padding, as base64encode() and filebase64() produce"
}

func (v base64Validator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (base64Validator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid base64",
			fmt.Sprintf("%s is not valid standard base64 (%v). Encode binary data with base64encode() or "+
				"filebase64(); for text, use value instead.", req.Path, err))
		return
	}
	if canonical := base64.StdEncoding.EncodeToString(b); canonical != s {
		resp.Diagnostics.AddAttributeError(req.Path, "Non-canonical base64",
			fmt.Sprintf("%s decodes, but not from its canonical form (extra whitespace, or padding bits "+
				"set): write %q instead, as base64encode() would.", req.Path, truncate(canonical, 80)))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
