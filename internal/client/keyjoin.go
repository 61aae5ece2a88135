package client

import "strings"

// JoinKey joins key path segments with exactly one "/" between them:
// slashes where two parts meet are collapsed to one, and one is added when
// neither side has it. A leading slash of the first part and a trailing slash
// of the last part are kept, so JoinKey("/app/", "/db", "host") is
// "/app/db/host" and JoinKey("/app", "cache/") is "/app/cache/". Empty parts
// are skipped; a part made only of slashes contributes a single slash.
// Slashes inside a part are left alone: etcd keys are byte strings, and
// "/a//b" is a key of its own.
func JoinKey(parts ...string) string {
	out := ""
	for _, p := range parts {
		switch {
		case p == "":
		case out == "":
			out = p
		default:
			out = strings.TrimRight(out, "/") + "/" + strings.TrimLeft(p, "/")
		}
	}
	return out
}
