package maintenance

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Policy says when a member is defragmented: when the share of its database
// file that is free exceeds FreeRatio, or when the free bytes exceed
// FreeBytes. A zero threshold is not set; a Policy with neither defragments
// nothing.
type Policy struct {
	// FreeRatio is a ratio from 0 to 1 (exclusive), e.g. 0.3 for "30%".
	FreeRatio float64
	// FreeBytes is a byte count, e.g. 512 MiB.
	FreeBytes int64
	// DisarmNoSpace disarms a member's NOSPACE alarm after a
	// defragmentation of that member freed space.
	DisarmNoSpace bool
}

// ErrInvalidThreshold is wrapped by the errors of ParsePercent and
// ParseBytes.
var ErrInvalidThreshold = errors.New("invalid threshold")

// ParsePercent parses a percentage such as "30%" or "12.5%" into a ratio.
// It must be above 0% and below 100%: a database is never 100% free, and
// 0% would defragment after every write.
func ParsePercent(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if !strings.HasSuffix(t, "%") {
		return 0, fmt.Errorf("%w: %q is not a percentage: write it with a %% sign, e.g. \"30%%\"", ErrInvalidThreshold, s)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: %q is not a percentage such as \"30%%\"", ErrInvalidThreshold, s)
	}
	if v <= 0 || v >= 100 {
		return 0, fmt.Errorf("%w: %q is out of range: use a percentage above 0%% and below 100%%, e.g. \"30%%\"", ErrInvalidThreshold, s)
	}
	return v / 100, nil
}

// byteUnits are the units ParseBytes accepts, by lowercase suffix.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// maxBytes bounds ParseBytes: far above any etcd database (etcd suggests at
// most 8 GiB), and far from overflowing.
const maxBytes = 1 << 50

// ParseBytes parses a byte size such as "512MiB", "1.5GiB", "100MB" or
// "1048576" (bytes). It must be at least 1 byte and at most 1 PiB.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%w: %q has an unknown unit %q: use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB, e.g. \"512MiB\"",
			ErrInvalidThreshold, s, t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: %q is not a size such as \"512MiB\"", ErrInvalidThreshold, s)
	}
	n := v * float64(mult)
	if n < 1 || n > maxBytes {
		return 0, fmt.Errorf("%w: %q is out of range: use a size from 1B to 1024TiB, e.g. \"512MiB\"", ErrInvalidThreshold, s)
	}
	return int64(n), nil
}

// FormatBytes formats n with a binary unit and one decimal, e.g. "3.2 MiB".
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, u := float64(n), 0
	for math.Abs(v) >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[u])
}

// exceeded tells whether m exceeds a threshold of p, and says how.
func (p Policy) exceeded(m Member) (bool, string) {
	free := m.Free()
	ratio := m.FreeRatio()
	over := p.FreeRatio > 0 && ratio > p.FreeRatio && free >= MinFreeForRatio || p.FreeBytes > 0 && free > p.FreeBytes
	return over, fmt.Sprintf("%.0f%% free: %s of %s", math.Floor(ratio*100), FormatBytes(free), FormatBytes(m.DBSize))
}

// MinFreeForRatio is the least free space for which the FreeRatio rule
// defragments. A new or nearly empty member's database is a few dozen KiB,
// of which half or more may be free: a percentage alone would defragment it
// on every plan for nothing to gain, and the plan would never settle.
const MinFreeForRatio = 256 << 10
