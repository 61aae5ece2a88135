package client

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
