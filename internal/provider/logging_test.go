package provider

import (
	"os"
	"testing"
)

func TestQuietSDKLogsUnlessDebugging(t *testing.T) {
	for _, name := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO", "TF_LOG_PATH"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	QuietSDKLogsUnlessDebugging()
	for _, name := range []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if got := os.Getenv(name); got != "OFF" {
			t.Fatalf("nobody debugging: %s=%q, want OFF", name, got)
		}
	}

	for _, name := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK_FRAMEWORK"} {
		t.Run(name, func(t *testing.T) {
			for _, quiet := range []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
				t.Setenv(quiet, "")
				os.Unsetenv(quiet)
			}
			t.Setenv(name, "trace")
			QuietSDKLogsUnlessDebugging()
			for _, quiet := range []string{"TF_LOG_SDK", "TF_LOG_SDK_PROTO"} {
				if v, ok := os.LookupEnv(quiet); ok && quiet != name {
					t.Fatalf("%s set: %s changed to %q", name, quiet, v)
				}
			}
		})
	}
}
