package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/embed"
	"sigs.k8s.io/yaml"
)

// fileOnlyKeys are the config-file keys that embed.ConfigFromFile reads into
// its unexported file representation instead of a tagged embed.Config field.
var fileOnlyKeys = []string{
	"listen-peer-urls",
	"listen-client-urls",
	"listen-client-http-urls",
	"initial-advertise-peer-urls",
	"advertise-client-urls",
	"cors",
	"host-whitelist",
	"client-transport-security",
	"peer-transport-security",
	"feature-gates",
}

// securityKeys are the keys allowed inside client-transport-security and
// peer-transport-security.
var securityKeys = []string{
	"cert-file",
	"key-file",
	"client-cert-file",
	"client-key-file",
	"client-cert-auth",
	"trusted-ca-file",
	"auto-tls",
	"allowed-cn",
	"allowed-hostname",
	"skip-client-san-verification",
}

// knownKeys returns every top-level key etcd's configuration file accepts:
// the JSON names of embed.Config plus fileOnlyKeys.
func knownKeys() map[string]bool {
	known := make(map[string]bool)
	t := reflect.TypeFor[embed.Config]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			known[name] = true
		}
	}
	for _, k := range fileOnlyKeys {
		known[k] = true
	}
	return known
}

// LoadConfig reads one etcd member's configuration from file, in etcd's own
// YAML configuration-file format (the format of `etcd --config-file`).
//
// It is stricter than etcd itself: a key etcd does not know (usually a typo
// that etcd would silently ignore) is an error. Every error names the file.
func LoadConfig(file string) (*embed.Config, error) {
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config file %s does not exist", file)
	case err != nil:
		return nil, fmt.Errorf("config file %s: %w", file, err)
	}

	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s is not a valid YAML mapping: %w", file, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("config file %s is empty: it needs at least name and data-dir", file)
	}
	if err := checkKeys(raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", file, err)
	}

	// embed.ConfigFromFile exits the process on a malformed URL list, so
	// check those first and report them like every other error.
	if err := checkURLs(raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", file, err)
	}

	cfg, err := embed.ConfigFromFile(file)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", file, err)
	}
	return cfg, nil
}

// urlKeys are the keys holding comma-separated URL lists.
var urlKeys = []string{
	"listen-peer-urls",
	"listen-client-urls",
	"listen-client-http-urls",
	"initial-advertise-peer-urls",
	"advertise-client-urls",
	"listen-metrics-urls",
}

// checkURLs reports URL-list keys whose value etcd cannot parse.
func checkURLs(raw map[string]any) error {
	for _, k := range urlKeys {
		v, ok := raw[k]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s must be a string of comma-separated URLs, got %v", k, v)
		}
		if s == "" {
			continue
		}
		if _, err := types.NewURLs(strings.Split(s, ",")); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// checkKeys reports keys that etcd's configuration file does not define.
func checkKeys(raw map[string]any) error {
	known := knownKeys()
	var unknown []string
	for k, v := range raw {
		if !known[k] {
			unknown = append(unknown, k)
			continue
		}
		if k != "client-transport-security" && k != "peer-transport-security" {
			continue
		}
		if v == nil {
			continue
		}
		sec, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be a mapping (cert-file, key-file, trusted-ca-file, ...)", k)
		}
		for sk := range sec {
			if !slices.Contains(securityKeys, sk) {
				unknown = append(unknown, k+"."+sk)
			}
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("unknown key(s) %s: etcd would ignore them; check the spelling against etcd's configuration file reference",
		strings.Join(unknown, ", "))
}
