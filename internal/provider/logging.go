package provider

import (
	"os"
	"strings"
)

// sdkLogLevelVars set the levels of the plugin SDK's own logs, which
// terraform-plugin-log reads when the server starts: TF_LOG_SDK is the SDK's
// root logger; the framework and protocol subsystems have their own levels,
// and a subsystem whose level is unset logs everything: it builds each
// message's fields (a copy of the logger options per field) before the root
// logger throws the message away.
var sdkLogLevelVars = []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"}

// QuietSDKLogsUnlessDebugging turns the plugin SDK's logs off when nobody
// can see them. Without a level set, the framework and the protocol layer
// log every request at TRACE, serialized as JSON onto the plugin's stderr,
// and the CLI throws all of it away unless TF_LOG (or another TF_LOG_*
// variable) is set: in a plan of a thousand resources that is about 40% of
// the provider's CPU time. The CLI passes its environment to the provider,
// so when any TF_LOG* variable is set the logs are left exactly as they
// were. Call it before serving the provider.
func QuietSDKLogsUnlessDebugging() {
	for _, kv := range os.Environ() {
		if name, value, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "TF_LOG") && value != "" {
			return
		}
	}
	for _, name := range sdkLogLevelVars {
		_ = os.Setenv(name, "OFF")
	}
}
