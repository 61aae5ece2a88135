package client

import "testing"

func TestLeaseID(t *testing.T) {
	for in, want := range map[string]int64{
		"694d7c8c1f0c7a0b": 0x694d7c8c1f0c7a0b,
		"694D7C8C1F0C7A0B": 0x694d7c8c1f0c7a0b,
		"1":                1,
		"00000000000000ff": 255,
		"7fffffffffffffff": 0x7fffffffffffffff,
	} {
		got, err := ParseLeaseID(in)
		if err != nil || got != want {
			t.Errorf("ParseLeaseID(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "0x1f", "xyz", "-1", "+1", "8000000000000000", "11111111111111111", "1_0", " 1"} {
		if _, err := ParseLeaseID(bad); err == nil {
			t.Errorf("ParseLeaseID(%q) accepted", bad)
		}
	}
	if got := FormatLeaseID(255); got != "00000000000000ff" {
		t.Errorf("FormatLeaseID(255) = %q", got)
	}
}
