// Package shell quotes strings as words of a POSIX shell command line, for
// commands and export lines that a user reads and copies: `terraform import`
// hints in the provider's errors, the export lines of `dev`.
package shell

import "strings"

// Quote returns s as one shell word: unchanged when every character is in
// a conservative safe set (letters, digits and -_./:,@=+%), so that a
// common key or URL stays readable, and in single quotes otherwise.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !safe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func safe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,@=+%", r)
}
