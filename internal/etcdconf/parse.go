package etcdconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Parse reads a config file back into a Config, e.g. one fetched from a
// node to detect drift. Keys other than the managed ones end up in Settings
// in the canonical form of NormalizeSettings. It does not Validate.
func Parse(data []byte) (Config, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return Config{}, fmt.Errorf("%w: parse: %v", ErrInvalidConfig, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return Config{}, fmt.Errorf("%w: parse: %v", ErrInvalidConfig, err)
	}
	str := func(k string) string {
		if v, ok := m[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	list := func(k string) []string {
		s := str(k)
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	c := Config{
		Name:                str("name"),
		DataDir:             str("data-dir"),
		ListenPeerURLs:      list("listen-peer-urls"),
		ListenClientURLs:    list("listen-client-urls"),
		AdvertisePeerURLs:   list("initial-advertise-peer-urls"),
		AdvertiseClientURLs: list("advertise-client-urls"),
		InitialClusterState: str("initial-cluster-state"),
		InitialClusterToken: str("initial-cluster-token"),
	}
	c.InitialCluster, err = ParseInitialCluster(str("initial-cluster"))
	if err != nil {
		return Config{}, err
	}
	for key, dst := range map[string]**TLS{"client-transport-security": &c.ClientTLS, "peer-transport-security": &c.PeerTLS} {
		sec, ok := m[key].(map[string]any)
		if !ok {
			continue
		}
		t := &TLS{}
		t.CertFile, _ = sec["cert-file"].(string)
		t.KeyFile, _ = sec["key-file"].(string)
		t.TrustedCAFile, _ = sec["trusted-ca-file"].(string)
		t.ClientCertAuth, _ = sec["client-cert-auth"].(bool)
		*dst = t
	}
	raw := map[string]string{}
	for k, v := range m {
		if _, ok := managedKeys[k]; ok {
			continue
		}
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			raw[k] = strings.Join(parts, ",")
		case nil:
			raw[k] = ""
		default:
			raw[k] = fmt.Sprint(x)
		}
	}
	if len(raw) > 0 {
		c.Settings, err = NormalizeSettings(raw)
		if err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// ParseInitialCluster parses "a=url,a=url2,b=url3", keeping first-seen order.
func ParseInitialCluster(s string) ([]Member, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Member
	idx := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("%w: initial-cluster entry %q is not name=url", ErrInvalidConfig, part)
		}
		if i, ok := idx[name]; ok {
			out[i].PeerURLs = append(out[i].PeerURLs, u)
			continue
		}
		idx[name] = len(out)
		out = append(out, Member{Name: name, PeerURLs: []string{u}})
	}
	return out, nil
}
