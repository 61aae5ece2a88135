package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestStringValidators(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		v    validator.String
		in   types.String
		want string // "" means valid
	}{
		{durationValidator{}, types.StringValue("5s"), ""},
		{durationValidator{}, types.StringValue("1m30s"), ""},
		{durationValidator{}, types.StringValue("5"), `"5" is not a duration`},
		{durationValidator{}, types.StringValue("0s"), "positive"},
		{durationValidator{}, types.StringNull(), ""},
		{durationValidator{}, types.StringUnknown(), ""},
		{endpointValidator{}, types.StringValue("https://10.0.0.1:2379"), ""},
		{endpointValidator{}, types.StringValue("10.0.0.1:2379"), ""},
		{endpointValidator{}, types.StringValue("ftp://x:1"), `scheme "ftp"`},
		{endpointValidator{}, types.StringValue(""), "endpoint is empty"},
		{leaseIDValidator{}, types.StringValue("694d7c8c1f0c7a0b"), ""},
		{leaseIDValidator{}, types.StringValue("0x1"), "not hexadecimal"},
		{leaseIDValidator{}, types.StringUnknown(), ""},
		{base64Validator{}, types.StringValue(""), ""},
		{base64Validator{}, types.StringValue("/wA="), ""},
		{base64Validator{}, types.StringValue("/wA"), "not valid standard base64"},
		{base64Validator{}, types.StringValue("_wA="), "not valid standard base64"},
		{base64Validator{}, types.StringValue("YR=="), `write "YQ==" instead`},
	} {
		resp := &validator.StringResponse{}
		tc.v.ValidateString(ctx, validator.StringRequest{Path: path.Root("attr"), ConfigValue: tc.in}, resp)
		switch {
		case tc.want == "" && resp.Diagnostics.HasError():
			t.Errorf("%T(%s): unexpected error %v", tc.v, tc.in, resp.Diagnostics)
		case tc.want != "" && !resp.Diagnostics.HasError():
			t.Errorf("%T(%s): accepted", tc.v, tc.in)
		case tc.want != "":
			d := resp.Diagnostics.Errors()[0]
			if !strings.Contains(d.Detail(), tc.want) || !strings.Contains(d.Detail(), "attr") {
				t.Errorf("%T(%s): detail %q does not contain %q and the attribute name", tc.v, tc.in, d.Detail(), tc.want)
			}
		}
		if tc.v.Description(ctx) == "" || tc.v.MarkdownDescription(ctx) == "" {
			t.Errorf("%T: no description", tc.v)
		}
	}
}

func TestEndpointsNotEmptyValidator(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		in      types.List
		wantErr bool
	}{
		{types.ListValueMust(types.StringType, []attr.Value{}), true},
		{types.ListValueMust(types.StringType, []attr.Value{types.StringValue("h:1")}), false},
		{types.ListNull(types.StringType), false},
		{types.ListUnknown(types.StringType), false},
	} {
		resp := &validator.ListResponse{}
		endpointsNotEmptyValidator{}.ValidateList(ctx, validator.ListRequest{Path: path.Root("endpoints"), ConfigValue: tc.in}, resp)
		if resp.Diagnostics.HasError() != tc.wantErr {
			t.Errorf("%s: error = %v, want %v", tc.in, resp.Diagnostics, tc.wantErr)
		}
	}
}
