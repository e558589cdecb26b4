package chart

import (
	"math"
	"strconv"
)

// A Unit says how a chart's values are read and labelled.
type Unit uint8

const (
	Count     Unit = iota // a plain number: "12", "1.2k", "3.4M"
	Bytes                 // memory, in bytes, labelled in binary units as Heroku does: "512 MB", "1.5 GB"
	Percent               // percentage points, not a fraction: 40 is "40%"
	Millis                // a duration in milliseconds: "250 ms", "1.2 s"
	PerMinute             // a rate per minute: "120 rpm", "1.2k rpm"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// Format returns v as the chart labels it: at most three significant
// digits (more only where the integer part needs them) and the unit's
// suffix. A value with no reading is "–".
func (u Unit) Format(v float64) string { return string(u.append(nil, v)) }

func (u Unit) append(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "–"...)
	}
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	switch u {
	case Bytes:
		switch {
		case v >= gib*kib:
			return append(appendSig(b, v/(gib*kib)), " TB"...)
		case v >= gib:
			return append(appendSig(b, v/gib), " GB"...)
		case v >= mib:
			return append(appendSig(b, v/mib), " MB"...)
		case v >= kib:
			return append(appendSig(b, v/kib), " KB"...)
		}
		return append(appendSig(b, v), " B"...)
	case Percent:
		return append(appendSig(b, v), '%')
	case Millis:
		if roundSig(v) < 1000 {
			return append(appendSig(b, v), " ms"...)
		}
		return append(appendSig(b, v/1000), " s"...)
	case PerMinute:
		return append(appendMetric(b, v), " rpm"...)
	}
	return appendMetric(b, v)
}

// appendMetric appends v ≥ 0 with a k, M, G or T suffix once it would
// take more than three digits, so that 999.7 is "1k" rather than "1000".
func appendMetric(b []byte, v float64) []byte {
	const suffixes = "kMGT"
	i := -1
	for i+1 < len(suffixes) && roundSig(v) >= 1000 {
		v /= 1000
		i++
	}
	b = appendSig(b, v)
	if i >= 0 {
		b = append(b, suffixes[i])
	}
	return b
}

// roundSig rounds v ≥ 0 to three significant digits.
func roundSig(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow10(2 - int(math.Floor(math.Log10(v))))
	return math.Round(v*p) / p
}

// appendSig appends v ≥ 0 rounded to three significant digits, without
// trailing zeros: 1.5, 512, 0.25, 1235.
func appendSig(b []byte, v float64) []byte {
	if v == 0 {
		return append(b, '0')
	}
	prec := max(0, 2-int(math.Floor(math.Log10(v))))
	b = strconv.AppendFloat(b, v, 'f', prec, 64)
	if prec > 0 {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
	}
	return b
}
