package client

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NoPrefixEnd is the range end etcd reads as "every key from the start key
// on" (clientv3.WithFromKey): a single zero byte.
const NoPrefixEnd = "\x00"

// PrefixRangeEnd returns the range end that, with prefix as the range start,
// covers exactly the keys that begin with prefix, following etcd's rules
// (clientv3.GetPrefixRangeEnd): trailing 0xff bytes are dropped and the last
// remaining byte is incremented, e.g. "/app/" → "/app0" and "a\xff" → "b".
// When no such byte exists (the empty prefix, or one made only of 0xff
// bytes) the result is NoPrefixEnd, which etcd reads as "to the end of the
// key space"; for the empty prefix etcd also reads the range start as "\x00",
// so the pair covers every key.
func PrefixRangeEnd(prefix string) string {
	end := []byte(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return string(end[:i+1])
		}
	}
	return NoPrefixEnd
}

// ErrRangeEndNotText: the range end of a prefix is not a string Terraform
// can hold.
var ErrRangeEndNotText = errors.New("the range end is not valid text")

// PrefixRangeEndText is PrefixRangeEnd for a prefix that is text, as every
// Terraform string is: valid UTF-8 in Unicode normal form C. Incrementing the
// last byte can leave that form (e.g. "/x\x7f" ends in the lone byte 0x80,
// and "c\u0326" becomes "c\u0327", which normal form C spells "ç" with other
// bytes). Terraform would then hold different bytes than etcd needs, so such
// a prefix yields an error wrapping ErrRangeEndNotText instead.
func PrefixRangeEndText(prefix string) (string, error) {
	end := PrefixRangeEnd(prefix)
	switch {
	case !utf8.ValidString(end):
		return "", fmt.Errorf("%w: the range end of prefix %q is the bytes %q, which are not valid UTF-8 and cannot be a Terraform string; use the prefix itself (e.g. the prefix argument of etcd_keys) instead", ErrRangeEndNotText, prefix, end)
	case !norm.NFC.IsNormalString(end):
		return "", fmt.Errorf("%w: the range end of prefix %q is %q, which Terraform would rewrite to Unicode normal form C (%q), a different key; use the prefix itself (e.g. the prefix argument of etcd_keys) instead", ErrRangeEndNotText, prefix, end, norm.NFC.String(end))
	}
	return end, nil
}
