package etcdconf

import (
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Value kinds a setting can have, derived from the Go type of the field.
type kind int

const (
	kindString kind = iota
	kindStrings
	kindBool
	kindInt
	kindUint
	kindFloat
	kindDuration
)

func (k kind) String() string {
	switch k {
	case kindStrings:
		return "a comma-separated list"
	case kindBool:
		return "a boolean (true or false)"
	case kindInt:
		return "an integer"
	case kindUint:
		return "a non-negative integer"
	case kindFloat:
		return "a number"
	case kindDuration:
		return `a duration such as "500ms" or "5s" (or integer nanoseconds)`
	default:
		return "a string"
	}
}

type keyInfo struct {
	kind kind
	bits int
}

// Keys of the config file that this package writes from Config fields and
// that Settings may therefore not carry.
var managedKeys = map[string]string{
	"name":                        "Name",
	"data-dir":                    "DataDir",
	"listen-peer-urls":            "ListenPeerURLs",
	"listen-client-urls":          "ListenClientURLs",
	"initial-advertise-peer-urls": "AdvertisePeerURLs",
	"advertise-client-urls":       "AdvertiseClientURLs",
	"initial-cluster":             "InitialCluster",
	"initial-cluster-state":       "InitialClusterState",
	"initial-cluster-token":       "InitialClusterToken",
	"client-transport-security":   "ClientTLS",
	"peer-transport-security":     "PeerTLS",
}

// Keys etcd reads that are not fields of embed.Config but of the file-only
// struct embed parses alongside it (unexported, so not reachable by
// reflection); all are strings. TestFileOnlyKeys checks each against
// embed.ConfigFromFile.
var fileOnlyKeys = []string{
	"listen-peer-urls", "listen-client-urls", "listen-client-http-urls",
	"initial-advertise-peer-urls", "advertise-client-urls",
	"cors", "host-whitelist",
	"client-transport-security", "peer-transport-security",
	"feature-gates",
}

// Keys embed.Config has but that make no sense as a persistent setting of a
// member managed by the provider.
var refusedKeys = map[string]string{
	"force-new-cluster": "it rewrites the membership on every start; use it by hand for disaster recovery only",
}

var (
	keysOnce sync.Once
	allKeys  map[string]keyInfo // every key the config file accepts and Settings may set
	known    map[string]bool    // every key the config file accepts, settable or not
)

func loadKeys() {
	keysOnce.Do(func() {
		allKeys = map[string]keyInfo{}
		known = map[string]bool{}
		t := reflect.TypeOf(embed.Config{})
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := tagName(f)
			if name == "" {
				continue
			}
			known[name] = true
			if _, ok := managedKeys[name]; ok {
				continue
			}
			if info, ok := kindOf(f.Type); ok {
				allKeys[name] = info
			}
		}
		for _, k := range fileOnlyKeys {
			known[k] = true
			if _, ok := managedKeys[k]; !ok {
				allKeys[k] = keyInfo{kind: kindString}
			}
		}
		for k := range refusedKeys {
			delete(allKeys, k)
		}
	})
}

// tagName is the key sigs.k8s.io/yaml (through encoding/json) maps to the
// field: its json tag. Untagged fields are matched by Go field name by
// encoding/json; etcd does not document them as file keys, so they are
// left out.
func tagName(f reflect.StructField) string {
	tag, ok := f.Tag.Lookup("json")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	return name
}

var durationType = reflect.TypeOf(time.Duration(0))

func kindOf(t reflect.Type) (keyInfo, bool) {
	if t == durationType {
		return keyInfo{kind: kindDuration, bits: 64}, true
	}
	switch t.Kind() {
	case reflect.String:
		return keyInfo{kind: kindString}, true
	case reflect.Bool:
		return keyInfo{kind: kindBool}, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return keyInfo{kind: kindInt, bits: t.Bits()}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return keyInfo{kind: kindUint, bits: t.Bits()}, true
	case reflect.Float32, reflect.Float64:
		return keyInfo{kind: kindFloat, bits: t.Bits()}, true
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return keyInfo{kind: kindStrings}, true
		}
	}
	return keyInfo{}, false
}

// SettingKeys returns, sorted, every key Settings may carry: the keys of
// etcd's config file (from embed.Config's tags) minus those Config manages
// and those whose value is not a scalar or a list of strings.
func SettingKeys() []string {
	loadKeys()
	keys := make([]string, 0, len(allKeys))
	for k := range allKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// suggest returns up to three settable keys close to key.
func suggest(key string) []string {
	loadKeys()
	norm := strings.ToLower(strings.NewReplacer("_", "-", ".", "-", " ", "-").Replace(strings.TrimSpace(key)))
	type cand struct {
		k string
		d int
	}
	var cands []cand
	for k := range allKeys {
		d := levenshtein(norm, k)
		switch {
		case norm == k:
			d = 0
		case len(norm) >= 4 && (strings.Contains(k, norm) || strings.Contains(norm, k)):
			d = min(d, 2)
		}
		if d <= max(2, len(norm)/4) {
			cands = append(cands, cand{k, d})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.k, b.k)
	})
	var out []string
	for i := 0; i < len(cands) && i < 3; i++ {
		out = append(out, cands[i].k)
	}
	return out
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
