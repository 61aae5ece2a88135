package provider

import (
	"os"
	"testing"
)

func TestQuietSDKLogsUnlessDebugging(t *testing.T) {
	for _, name := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_PATH"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	QuietSDKLogsUnlessDebugging()
	if got := os.Getenv("TF_LOG_SDK"); got != "OFF" {
		t.Fatalf("nobody debugging: TF_LOG_SDK=%q, want OFF", got)
	}

	for _, name := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK_FRAMEWORK"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("TF_LOG_SDK", "")
			os.Unsetenv("TF_LOG_SDK")
			t.Setenv(name, "trace")
			QuietSDKLogsUnlessDebugging()
			if v, ok := os.LookupEnv("TF_LOG_SDK"); ok {
				t.Fatalf("%s set: TF_LOG_SDK changed to %q", name, v)
			}
		})
	}
}
