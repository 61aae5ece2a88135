package client

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLeaseID parses a lease ID in etcdctl's form: hexadecimal, as printed
// by `etcdctl lease grant` (e.g. "694d7c8c1f0c7a0b"). Case and leading zeros
// do not matter.
func ParseLeaseID(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("lease ID is empty: use the hexadecimal ID printed by `etcdctl lease grant`, e.g. \"694d7c8c1f0c7a0b\"")
	}
	if len(s) > 16 {
		return 0, fmt.Errorf("lease ID %q is longer than 16 hexadecimal digits; use the ID printed by `etcdctl lease grant`, e.g. \"694d7c8c1f0c7a0b\"", s)
	}
	id, err := strconv.ParseInt(s, 16, 64)
	if err != nil || strings.ContainsAny(s, "+-_xX") {
		return 0, fmt.Errorf("lease ID %q is not hexadecimal (digits 0-9 and a-f only, no 0x prefix, at most 7fffffffffffffff); use the ID printed by `etcdctl lease grant`, e.g. \"694d7c8c1f0c7a0b\"", s)
	}
	if id == 0 {
		return 0, fmt.Errorf("lease ID %q is zero, which etcd reserves for \"no lease\"; leave lease unset instead", s)
	}
	return id, nil
}

// FormatLeaseID formats a lease ID the way etcdctl prints it: 16 lowercase
// hexadecimal digits.
func FormatLeaseID(id int64) string {
	return fmt.Sprintf("%016x", id)
}
