package provider

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// etcd_cluster's compaction: etcd's auto-compaction-mode and
// auto-compaction-retention as attributes of their own, rendered into the
// members' config files with the other settings.

var (
	_ validator.String = compactionRetentionValidator{}
	_ validator.Map    = compactionSettingsValidator{}
)

// Defaults of etcd_cluster's compaction: keep one hour of history.
// etcd's own default keeps all of it (retention 0), which is how databases
// reach their quota and raise NOSPACE.
const (
	defaultCompactionMode      = "periodic"
	defaultCompactionRetention = "1h"
)

// compactionKeys are the config-file keys of the attributes, by attribute.
var compactionKeys = map[string]string{
	"auto_compaction_mode":      "auto-compaction-mode",
	"auto_compaction_retention": "auto-compaction-retention",
}

// addCompactionAttributes adds the compaction attributes to etcd_cluster's
// schema.
func addCompactionAttributes(attrs map[string]schema.Attribute) {
	attrs["auto_compaction_mode"] = schema.StringAttribute{Optional: true, Computed: true,
		Default: stringdefault.StaticString(defaultCompactionMode),
		MarkdownDescription: "etcd's `auto-compaction-mode`: `periodic` (default) keeps the history of the last " +
			"`auto_compaction_retention` (a duration), `revision` keeps the last `auto_compaction_retention` revisions. " +
			"Compaction discards old revisions; the space they took is reused, and given back to the file system by " +
			"a defragmentation (`etcd_maintenance`). A change restarts the members one at a time.",
		Validators: []validator.String{stringvalidator.OneOf("periodic", "revision")}}
	attrs["auto_compaction_retention"] = schema.StringAttribute{Optional: true, Computed: true,
		Default: stringdefault.StaticString(defaultCompactionRetention),
		MarkdownDescription: "etcd's `auto-compaction-retention`. With `periodic`, a duration such as `\"1h\"` (the " +
			"default) or `\"30m\"`, or a whole number of hours; with `revision`, a number of revisions such as " +
			"`\"10000\"`. `\"0\"` turns automatic compaction off (etcd's own default), and the history then grows " +
			"until the database reaches its quota. A change restarts the members one at a time.",
		Validators: []validator.String{compactionRetentionValidator{}}}
}

// compactionSettings adds the compaction attributes of m to settings, as
// the config file's keys.
func (m clusterModel) compactionSettings(settings map[string]string) map[string]string {
	if settings == nil {
		settings = map[string]string{}
	}
	for _, v := range []struct {
		key string
		val types.String
	}{{"auto-compaction-mode", m.AutoCompactionMode}, {"auto-compaction-retention", m.AutoCompactionRetention}} {
		if !v.val.IsNull() && !v.val.IsUnknown() {
			settings[v.key] = v.val.ValueString()
		}
	}
	return settings
}

// checkCompactionRetention checks retention for mode; the error says what
// to write.
func checkCompactionRetention(mode, retention string) error {
	if n, err := strconv.ParseInt(retention, 10, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("%q is negative: use \"0\" to turn automatic compaction off", retention)
		}
		return nil
	}
	if mode == "revision" {
		return fmt.Errorf("%q is not a number of revisions: with auto_compaction_mode = \"revision\" write a whole number such as \"10000\"", retention)
	}
	d, err := time.ParseDuration(retention)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"1h\" or \"30m\", nor a whole number of hours", retention)
	}
	if d < 0 {
		return fmt.Errorf("%q is negative: use \"0\" to turn automatic compaction off", retention)
	}
	return nil
}
