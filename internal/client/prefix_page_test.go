package client

import "testing"

func TestNextPageLimit(t *testing.T) {
	for _, c := range []struct{ bytes, n, want int }{
		{2000 * 20, 2000, prefixMaxPage},            // small keys: the largest page
		{2000 * 4096, 2000, prefixPageBytes / 4096}, // 4 KiB each: 1,024 keys, about 4 MiB
		{64 << 20, 64, prefixMinPage},               // 1 MiB each: never fewer than the minimum
		{0, 0, prefixMaxPage},                       // nothing read: no division by zero
	} {
		if got := nextPageLimit(c.bytes, c.n); got != c.want {
			t.Errorf("nextPageLimit(%d, %d) = %d, want %d", c.bytes, c.n, got, c.want)
		}
	}
}
