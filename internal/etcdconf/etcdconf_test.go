package etcdconf

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func sample() Config {
	return Config{
		Name:                "m1",
		DataDir:             "/var/lib/etcd/m1",
		ListenPeerURLs:      []string{"https://10.0.0.1:2380"},
		ListenClientURLs:    []string{"https://10.0.0.1:2379", "https://127.0.0.1:2379"},
		AdvertisePeerURLs:   []string{"https://10.0.0.1:2380"},
		AdvertiseClientURLs: []string{"https://10.0.0.1:2379"},
		InitialCluster: []Member{
			{Name: "m1", PeerURLs: []string{"https://10.0.0.1:2380"}},
			{Name: "m2", PeerURLs: []string{"https://10.0.0.2:2380"}},
			{Name: "m3", PeerURLs: []string{"https://10.0.0.3:2380"}},
		},
		InitialClusterState: StateNew,
		InitialClusterToken: "prod-cluster",
		ClientTLS:           &TLS{CertFile: "/etc/etcd/server.pem", KeyFile: "/etc/etcd/server-key.pem", TrustedCAFile: "/etc/etcd/ca.pem", ClientCertAuth: true},
		PeerTLS:             &TLS{CertFile: "/etc/etcd/peer.pem", KeyFile: "/etc/etcd/peer-key.pem", TrustedCAFile: "/etc/etcd/ca.pem", ClientCertAuth: true},
		Settings: map[string]string{
			"snapshot-count":            "5000",
			"quota-backend-bytes":       "8589934592",
			"auto-compaction-retention": "1h",
			"auto-compaction-mode":      "periodic",
			"backend-batch-interval":    "10ms",
			"log-outputs":               "stderr",
			"heartbeat-interval":        "150",
			"election-timeout":          "1500",
			"strict-reconfig-check":     "true",
			"cipher-suites":             "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
		},
	}
}

func loadRendered(t *testing.T, c Config) (*embed.Config, []byte) {
	t.Helper()
	data, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "etcd.yaml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ec, err := embed.ConfigFromFile(p)
	if err != nil {
		t.Fatalf("embed.ConfigFromFile rejected the rendered file: %v\n%s", err, data)
	}
	return ec, data
}

func urlStrings(us []url.URL) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.String())
	}
	return out
}

func TestRenderedConfigIsReadByEmbed(t *testing.T) {
	c := sample()
	ec, data := loadRendered(t, c)
	t.Logf("rendered:\n%s", data)
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", ec.Name, "m1"},
		{"data-dir", ec.Dir, "/var/lib/etcd/m1"},
		{"initial-cluster", ec.InitialCluster, "m1=https://10.0.0.1:2380,m2=https://10.0.0.2:2380,m3=https://10.0.0.3:2380"},
		{"initial-cluster-state", ec.ClusterState, "new"},
		{"initial-cluster-token", ec.InitialClusterToken, "prod-cluster"},
		{"client cert", ec.ClientTLSInfo.CertFile, "/etc/etcd/server.pem"},
		{"client key", ec.ClientTLSInfo.KeyFile, "/etc/etcd/server-key.pem"},
		{"client ca", ec.ClientTLSInfo.TrustedCAFile, "/etc/etcd/ca.pem"},
		{"client cert auth", ec.ClientTLSInfo.ClientCertAuth, true},
		{"peer cert", ec.PeerTLSInfo.CertFile, "/etc/etcd/peer.pem"},
		{"peer cert auth", ec.PeerTLSInfo.ClientCertAuth, true},
		{"snapshot-count", ec.SnapshotCount, uint64(5000)},
		{"quota-backend-bytes", ec.QuotaBackendBytes, int64(8589934592)},
		{"auto-compaction-retention", ec.AutoCompactionRetention, "1h"},
		{"auto-compaction-mode", ec.AutoCompactionMode, "periodic"},
		{"backend-batch-interval", ec.BackendBatchInterval, 10 * time.Millisecond},
		{"log-outputs", ec.LogOutputs, []string{"stderr"}},
		{"heartbeat-interval", ec.TickMs, uint(150)},
		{"election-timeout", ec.ElectionMs, uint(1500)},
		{"strict-reconfig-check", ec.StrictReconfigCheck, true},
		{"cipher-suites", ec.CipherSuites, []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}},
		{"listen-peer-urls", urlStrings(ec.ListenPeerUrls), c.ListenPeerURLs},
		{"listen-client-urls", urlStrings(ec.ListenClientUrls), c.ListenClientURLs},
		{"initial-advertise-peer-urls", urlStrings(ec.AdvertisePeerUrls), c.AdvertisePeerURLs},
		{"advertise-client-urls", urlStrings(ec.AdvertiseClientUrls), c.AdvertiseClientURLs},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: embed read %#v, want %#v", ch.what, ch.got, ch.want)
		}
	}

	// Parse gives the Config back, settings in canonical form.
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	want.Settings, _ = NormalizeSettings(want.Settings)
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("Parse(Render(c)) differs:\n got %#v\nwant %#v", back, want)
	}
	if want.Settings["cipher-suites"] != "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" ||
		want.Settings["backend-batch-interval"] != "10ms" {
		t.Fatalf("canonical settings: %v", want.Settings)
	}
	// Rendering is deterministic.
	again, _ := Render(sample())
	if string(again) != string(data) {
		t.Fatal("Render is not deterministic")
	}
}

// Every key SettingKeys offers is read by embed: set each one to its
// default, render, and check embed ends up with the same value.
func TestEverySettingKeyIsReadByEmbed(t *testing.T) {
	def := embed.NewConfig()
	dv := reflect.ValueOf(def).Elem()
	fields := map[string]reflect.Value{}
	for i := range dv.NumField() {
		if n := tagName(dv.Type().Field(i)); n != "" {
			fields[n] = dv.Field(i)
		}
	}
	settings := map[string]string{}
	for _, k := range SettingKeys() {
		f, ok := fields[k]
		if !ok {
			continue // file-only keys, tested below
		}
		info := allKeys[k]
		var s string
		switch info.kind {
		case kindStrings:
			s = strings.Join(f.Interface().([]string), ",")
		case kindDuration:
			s = time.Duration(f.Int()).String()
		default:
			s = fmt.Sprint(f.Interface())
		}
		settings[k] = s
	}
	if len(settings) < 40 {
		t.Fatalf("only %d settable keys derived from embed.Config: %v", len(settings), SettingKeys())
	}
	c := sample()
	c.Settings = settings
	ec, _ := loadRendered(t, c)
	ev := reflect.ValueOf(ec).Elem()
	for i := range ev.NumField() {
		n := tagName(ev.Type().Field(i))
		if _, ok := settings[n]; !ok {
			continue
		}
		got, want := ev.Field(i).Interface(), fields[n].Interface()
		if gs, ok := got.([]string); ok && len(gs) == 0 {
			got = []string(nil)
		}
		if ws, ok := want.([]string); ok && len(ws) == 0 {
			want = []string(nil)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: set %q, embed read %#v, want %#v", n, settings[n], got, want)
		}
	}
}

func TestFileOnlyKeys(t *testing.T) {
	c := sample()
	c.Settings = map[string]string{
		"cors":                    "https://a.example:443,https://b.example:8443",
		"host-whitelist":          "a.example,b.example",
		"listen-client-http-urls": "https://10.0.0.1:2378",
	}
	ec, _ := loadRendered(t, c)
	if len(ec.CORS) != 2 || !has(ec.CORS, "https://a.example:443") {
		t.Errorf("cors: %v", ec.CORS)
	}
	if len(ec.HostWhitelist) != 2 || !has(ec.HostWhitelist, "b.example") {
		t.Errorf("host-whitelist: %v", ec.HostWhitelist)
	}
	if got := urlStrings(ec.ListenClientHttpUrls); !slices.Equal(got, []string{"https://10.0.0.1:2378"}) {
		t.Errorf("listen-client-http-urls: %v", got)
	}
}

func settingErrors(t *testing.T, err error) map[string]*SettingError {
	t.Helper()
	out := map[string]*SettingError{}
	var walk func(error)
	walk = func(e error) {
		if se, ok := e.(*SettingError); ok {
			out[se.Key] = se
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func TestSettingsValidation(t *testing.T) {
	err := ValidateSettings(map[string]string{
		"snapshot_count":      "10",
		"quota-backend-byte":  "1",
		"snapshot-count":      "many",
		"data-dir":            "/x",
		"force-new-cluster":   "true",
		"discovery-config":    "x",
		"totally-made-up-key": "1",
		"heartbeat-interval":  "-5",
		"pre-vote":            "maybe",
		"grpc-keepalive-time": "5s",
		"cors":                "https://no-port.example",
		"listen-metrics-urls": "http://metrics.example:2381",
	})
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	t.Logf("%v", err)
	errs := settingErrors(t, err)
	expect := func(key string, sentinel error, suggestion string) {
		t.Helper()
		se, ok := errs[key]
		if !ok {
			t.Errorf("%s: no error", key)
			return
		}
		if !errors.Is(se, sentinel) {
			t.Errorf("%s: %v, want %v", key, se, sentinel)
		}
		if suggestion != "" && !slices.Contains(se.Suggestions, suggestion) {
			t.Errorf("%s: suggestions %v lack %q", key, se.Suggestions, suggestion)
		}
		if !strings.Contains(se.Error(), key) {
			t.Errorf("%s: message does not name the key: %v", key, se)
		}
	}
	expect("snapshot_count", ErrUnknownSetting, "snapshot-count")
	expect("quota-backend-byte", ErrUnknownSetting, "quota-backend-bytes")
	expect("grpc-keepalive-time", ErrUnknownSetting, "grpc-keepalive-timeout")
	expect("totally-made-up-key", ErrUnknownSetting, "")
	expect("discovery-config", ErrUnknownSetting, "")
	expect("snapshot-count", ErrInvalidValue, "")
	expect("heartbeat-interval", ErrInvalidValue, "")
	expect("pre-vote", ErrInvalidValue, "")
	expect("data-dir", ErrManagedSetting, "")
	expect("cors", ErrInvalidValue, "")
	expect("listen-metrics-urls", ErrInvalidValue, "")
	expect("force-new-cluster", ErrManagedSetting, "")
	if len(errs) != 12 {
		t.Errorf("%d errors, want 12", len(errs))
	}
	if !strings.Contains(errs["snapshot_count"].Error(), `did you mean "snapshot-count"`) {
		t.Errorf("message: %v", errs["snapshot_count"])
	}

	if err := ValidateSettings(map[string]string{"snapshot-count": "10", "backend-batch-interval": "250000"}); err != nil {
		t.Fatal(err)
	}
	// Render refuses before producing anything.
	c := sample()
	c.Settings = map[string]string{"snapshot-cnt": "1"}
	if data, err := Render(c); err == nil || data != nil || !errors.Is(err, ErrUnknownSetting) {
		t.Fatalf("Render with a bad setting: %q, %v", data, err)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := map[string]func(*Config){
		"bad name":             func(c *Config) { c.Name = "bad name" },
		"relative data dir":    func(c *Config) { c.DataDir = "data" },
		"bad state":            func(c *Config) { c.InitialClusterState = "joining" },
		"no token":             func(c *Config) { c.InitialClusterToken = "" },
		"self missing":         func(c *Config) { c.InitialCluster = c.InitialCluster[1:] },
		"duplicate member":     func(c *Config) { c.InitialCluster = append(c.InitialCluster, c.InitialCluster[1]) },
		"advertise mismatch":   func(c *Config) { c.AdvertisePeerURLs = []string{"https://10.0.0.9:2380"} },
		"https without tls":    func(c *Config) { c.ClientTLS = nil },
		"hostname listen":      func(c *Config) { c.ListenClientURLs = []string{"https://node1.example:2379"} },
		"no port":              func(c *Config) { c.ListenPeerURLs = []string{"https://10.0.0.1"} },
		"cert auth without ca": func(c *Config) { c.PeerTLS.TrustedCAFile = "" },
		"no listen urls":       func(c *Config) { c.ListenPeerURLs = nil },
	}
	for name, mutate := range cases {
		c := sample()
		c.PeerTLS = &TLS{}
		*c.PeerTLS = *sample().PeerTLS
		mutate(&c)
		if err := c.Validate(); err == nil || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
	// A plain (no TLS) config is fine, and host names are fine in advertise URLs.
	c := Config{
		Name: "a", DataDir: "/d", ListenPeerURLs: []string{"http://0.0.0.0:2380"}, ListenClientURLs: []string{"http://0.0.0.0:2379"},
		AdvertisePeerURLs: []string{"http://a.example:2380"}, AdvertiseClientURLs: []string{"http://a.example:2379"},
		InitialCluster: []Member{{Name: "a", PeerURLs: []string{"http://a.example:2380"}}}, InitialClusterState: StateExisting, InitialClusterToken: "t",
	}
	ec, _ := loadRendered(t, c)
	if ec.ClusterState != "existing" {
		t.Fatal(ec.ClusterState)
	}
}

func TestParseInitialCluster(t *testing.T) {
	m, err := ParseInitialCluster("a=http://1:1,b=http://2:2,a=http://3:3")
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{{Name: "a", PeerURLs: []string{"http://1:1", "http://3:3"}}, {Name: "b", PeerURLs: []string{"http://2:2"}}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("%v", m)
	}
	if _, err := ParseInitialCluster("a"); err == nil {
		t.Fatal("accepted a malformed entry")
	}
}

func TestValueQuoting(t *testing.T) {
	c := sample()
	c.Settings = map[string]string{"auth-token": `simple # not a comment: "x"`}
	ec, _ := loadRendered(t, c)
	if ec.AuthToken != `simple # not a comment: "x"` {
		t.Fatalf("auth-token = %q", ec.AuthToken)
	}
}

func has[V any](m map[string]V, k string) bool { _, ok := m[k]; return ok }
