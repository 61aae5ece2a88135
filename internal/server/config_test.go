package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigReadsEtcdFormat(t *testing.T) {
	file := filepath.Join(t.TempDir(), "etcd.yaml")
	content := `name: n1
data-dir: /var/lib/etcd
listen-client-urls: https://10.0.0.1:2379
advertise-client-urls: https://10.0.0.1:2379
listen-peer-urls: https://10.0.0.1:2380
initial-advertise-peer-urls: https://10.0.0.1:2380
initial-cluster: n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380
initial-cluster-state: existing
auto-compaction-retention: "1"
client-transport-security:
  cert-file: /etc/etcd/server.crt
  key-file: /etc/etcd/server.key
  trusted-ca-file: /etc/etcd/ca.crt
  client-cert-auth: true
peer-transport-security:
  cert-file: /etc/etcd/peer.crt
  key-file: /etc/etcd/peer.key
  trusted-ca-file: /etc/etcd/ca.crt
  client-cert-auth: true
`
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "n1" || cfg.Dir != "/var/lib/etcd" || cfg.ClusterState != "existing" {
		t.Errorf("got name %q dir %q state %q", cfg.Name, cfg.Dir, cfg.ClusterState)
	}
	if got := cfg.ListenClientUrls[0].String(); got != "https://10.0.0.1:2379" {
		t.Errorf("listen-client-urls = %s", got)
	}
	if !cfg.ClientTLSInfo.ClientCertAuth || cfg.PeerTLSInfo.TrustedCAFile != "/etc/etcd/ca.crt" {
		t.Errorf("TLS settings not read: %+v / %+v", cfg.ClientTLSInfo, cfg.PeerTLSInfo)
	}
}

func TestCheckKeysAcceptsEveryConfigKey(t *testing.T) {
	// Keys etcd's documentation uses in its sample configuration file.
	raw := map[string]any{
		"name": "x", "data-dir": "d", "wal-dir": "w", "snapshot-count": 1,
		"heartbeat-interval": 100, "election-timeout": 1000, "quota-backend-bytes": 0,
		"max-snapshots": 5, "max-wals": 5, "cors": "", "host-whitelist": "",
		"discovery-srv": "", "strict-reconfig-check": false, "enable-pprof": true,
		"logger": "zap", "log-outputs": []any{"stderr"},
		"force-new-cluster": false, "auto-compaction-mode": "periodic",
		"feature-gates": "", "client-transport-security": map[string]any{"auto-tls": false},
	}
	if err := checkKeys(raw); err != nil {
		t.Fatal(err)
	}
	if err := checkURLs(map[string]any{"listen-client-urls": "http://a:1,https://b:2"}); err != nil {
		t.Fatal(err)
	}
	if err := checkURLs(map[string]any{"advertise-client-urls": 12}); err == nil {
		t.Error("a number is not a URL list")
	}
	raw["peer-transport-security"] = "yes"
	if err := checkKeys(raw); err == nil || !strings.Contains(err.Error(), "must be a mapping") {
		t.Errorf("scalar peer-transport-security: err = %v", err)
	}
}
