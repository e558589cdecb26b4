package chart

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		unit Unit
		v    float64
		want string
	}{
		{Bytes, 512 * mib, "512 MB"},
		{Bytes, 1.5 * gib, "1.5 GB"},
		{Bytes, 768 * mib, "768 MB"},
		{Bytes, 1000 * mib, "1000 MB"},
		{Bytes, 370.4 * mib, "370 MB"},
		{Bytes, 256 * kib, "256 KB"},
		{Bytes, 2 * gib * kib, "2 TB"},
		{Bytes, 12, "12 B"},
		{Millis, 250, "250 ms"},
		{Millis, 1200, "1.2 s"},
		{Millis, 999.7, "1 s"},
		{Millis, 0.5, "0.5 ms"},
		{Millis, 30000, "30 s"},
		{Percent, 40, "40%"},
		{Percent, 12.345, "12.3%"},
		{Percent, 0, "0%"},
		{PerMinute, 1200, "1.2k rpm"},
		{PerMinute, 120, "120 rpm"},
		{Count, 1200, "1.2k"},
		{Count, 999.7, "1k"},
		{Count, 1234567, "1.23M"},
		{Count, 0.25, "0.25"},
		{Count, 9.996, "10"},
		{Count, 12, "12"},
		{Count, -3, "-3"},
		{Count, 2e15, "2000T"},
		{Count, math.NaN(), "–"},
	} {
		if got := tc.unit.Format(tc.v); got != tc.want {
			t.Errorf("unit %d: Format(%v) = %q, want %q", tc.unit, tc.v, got, tc.want)
		}
	}
}
