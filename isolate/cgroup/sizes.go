package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Size is a dyno size: the limits a dyno of that size runs with.
type Size struct {
	// Name is the size's name, such as "standard-1x".
	Name string
	// Memory is the memory quota in bytes. Above it the dyno manager
	// reports R14 (Memory quota exceeded) and the dyno keeps running.
	Memory int64
	// KillRatio places the hard limit, memory.max, at Memory × KillRatio:
	// there the kernel OOM-kills the dyno, Heroku's R15 (Memory quota
	// vastly exceeded). At least 1.
	KillRatio float64
	// Pids is the most processes and threads the dyno may hold.
	Pids int64
	// CPUWeight is the dyno's share of contended CPU, relative to other
	// dynos, 1 to 10000.
	CPUWeight int64
	// CPUQuota caps the dyno at this many CPUs; 0 means no cap.
	CPUQuota float64
}

const mib = 1 << 20

// DefaultSizes returns Heroku's Common Runtime sizes (Dev Center
// "Dyno Types", "Limits" and "Memory Behavior"): memory quotas of 512MB
// for eco, basic and standard-1x, 1GB for standard-2x, 2.5GB for
// performance-m and 14GB for performance-l, R15 at twice the quota for all
// six, and 256, 256, 256, 512, 16384 and 32768 processes.
//
// cpu.weight only matters when CPUs are contended, and then divides them
// between sibling leaves in proportion to it. Heroku lists a CPU share of
// 1x for the standard-1x class and 2x for standard-2x, and dedicated CPUs
// with 12x and 50x the compute for performance-m and performance-l, so the
// weights are 100 (the kernel's default, one share), 200, 1200 and 5000.
// No size has a CPU quota: on one machine a quota would only slow a dyno
// while CPUs sit idle, and Heroku's shared dynos burst beyond their share
// too ("Compute 1x-4x").
func DefaultSizes() map[string]Size {
	sizes := []Size{
		{Name: "eco", Memory: 512 * mib, KillRatio: 2, Pids: 256, CPUWeight: 100},
		{Name: "basic", Memory: 512 * mib, KillRatio: 2, Pids: 256, CPUWeight: 100},
		{Name: "standard-1x", Memory: 512 * mib, KillRatio: 2, Pids: 256, CPUWeight: 100},
		{Name: "standard-2x", Memory: 1024 * mib, KillRatio: 2, Pids: 512, CPUWeight: 200},
		{Name: "performance-m", Memory: 2560 * mib, KillRatio: 2, Pids: 16384, CPUWeight: 1200},
		{Name: "performance-l", Memory: 14336 * mib, KillRatio: 2, Pids: 32768, CPUWeight: 5000},
	}
	m := make(map[string]Size, len(sizes))
	for _, s := range sizes {
		m[s.Name] = s
	}
	return m
}

// Limits returns the cgroup limits of a dyno of size s.
//
// Swap is off (SwapMax 0). Heroku kills at R15 when RSS and swap together
// reach the kill ratio; with no swap, memory.max at Memory × KillRatio
// kills at that same point, once the kernel has reclaimed what page cache
// it can. Unlimited swap would instead let a dyno page out to the host's
// swap and never reach memory.max.
func (s Size) Limits() Limits {
	lim := Limits{
		MemoryMax: memoryMax(s.Memory, s.KillRatio),
		SwapMax:   0,
		PidsMax:   s.Pids,
		CPUWeight: s.CPUWeight,
		CPUPeriod: defaultCPUPeriod,
	}
	if s.CPUQuota > 0 {
		lim.CPUQuota = time.Duration(s.CPUQuota * float64(defaultCPUPeriod))
	}
	return lim
}

// memoryMax returns memory × ratio (at least 1), as a limit in bytes.
func memoryMax(memory int64, ratio float64) int64 {
	m := float64(memory) * max(ratio, 1)
	if m >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(m)
}

// sizeTable is a [sizes.NAME] table of dyno.toml. Each field is any so
// that a value of the wrong type is reported here, with its key and a fix,
// rather than as a decoder type error; a nil field was not set.
type sizeTable struct {
	Memory    any `toml:"memory"`
	KillRatio any `toml:"kill_ratio"`
	Pids      any `toml:"pids"`
	CPUWeight any `toml:"cpu_weight"`
	CPUQuota  any `toml:"cpu_quota"`
}

// LoadSizes returns DefaultSizes with the [sizes.NAME] tables of the
// dyno.toml at path applied: a table for a known size overrides the keys
// it sets, and a table for a new size adds it, starting from the default
// standard-1x. The keys are
//
//	memory     = "512MB"   # or a number of bytes; see ParseBytes
//	kill_ratio = 2
//	pids       = 256
//	cpu_weight = 100
//	cpu_quota  = 1.5       # CPUs; 0 for none
//
// A missing file gives DefaultSizes. A key LoadSizes does not know or a
// value it cannot use is an error that names the file, the key and the
// fix. Other tables of dyno.toml belong to other parts of dyno and are
// left alone.
func LoadSizes(path string) (map[string]Size, error) {
	defaults := DefaultSizes()
	sizes := DefaultSizes()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return sizes, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, pathErrno(err))
	}
	// Each table is decoded on its own, so that a value that is not a
	// table is reported here rather than as a decoder type error.
	var file struct {
		Sizes map[string]toml.Primitive `toml:"sizes"`
	}
	md, err := toml.Decode(string(data), &file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Type is "" for a table made implicitly by a dotted key.
	if typ := md.Type("sizes"); typ != "" && typ != "Hash" {
		return nil, fmt.Errorf("%s: sizes: not a table; write each size as a table, like [sizes.standard-1x]", path)
	}

	// Apply the tables in the order they first appear, so the first
	// mistake in the file is the one reported. A table can appear as
	// [sizes.NAME], as a dotted key sizes.NAME.memory or inline.
	var names []string
	for _, key := range md.Keys() {
		if len(key) >= 2 && key[0] == "sizes" && !slices.Contains(names, key[1]) {
			names = append(names, key[1])
		}
	}
	for _, name := range names {
		key := toml.Key{"sizes", name}
		if typ := md.Type(key...); typ != "" && typ != "Hash" {
			return nil, fmt.Errorf("%s: %s: not a table; write a size as a table, like [%s] with memory = \"512MB\" below it", path, key, key)
		}
		var table sizeTable
		if err := md.PrimitiveDecode(file.Sizes[name], &table); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, key, err)
		}
		size, ok := sizes[name]
		if !ok {
			size = defaults["standard-1x"]
			size.Name = name
		}
		if err := table.apply(&size); err != nil {
			return nil, fmt.Errorf("%s: %s.%w", path, key, err)
		}
		sizes[name] = size
	}

	for _, key := range md.Undecoded() {
		if len(key) > 0 && key[0] == "sizes" {
			return nil, fmt.Errorf("%s: %s: unknown key; a size takes memory, kill_ratio, pids, cpu_weight and cpu_quota", path, key)
		}
	}
	return sizes, nil
}

// apply sets the keys of t that are set on s. Its errors begin with the
// key, for LoadSizes to prefix with the table.
func (t sizeTable) apply(s *Size) error {
	if t.Memory != nil {
		n, err := tomlBytes(t.Memory)
		if err != nil {
			return fmt.Errorf("memory: %w", err)
		}
		s.Memory = n
	}
	if t.KillRatio != nil {
		r, ok := tomlNumber(t.KillRatio)
		if !ok || r < 1 || math.IsInf(r, 0) {
			return fmt.Errorf("kill_ratio: %s is not a ratio of at least 1; write it like kill_ratio = 2", tomlValue(t.KillRatio))
		}
		s.KillRatio = r
	}
	if t.Pids != nil {
		n, ok := t.Pids.(int64)
		if !ok || n < 1 {
			return fmt.Errorf("pids: %s is not a count of processes; write it like pids = 256", tomlValue(t.Pids))
		}
		s.Pids = n
	}
	if t.CPUWeight != nil {
		n, ok := t.CPUWeight.(int64)
		if !ok || n < minCPUWeight || n > maxCPUWeight {
			return fmt.Errorf("cpu_weight: %s is not a weight from %d to %d; write it like cpu_weight = 100", tomlValue(t.CPUWeight), minCPUWeight, maxCPUWeight)
		}
		s.CPUWeight = n
	}
	if t.CPUQuota != nil {
		// The kernel refuses a quota under 1ms per period, which at the
		// 100ms period is 0.01 CPUs.
		q, ok := tomlNumber(t.CPUQuota)
		if !ok || q != 0 && q < 0.01 || math.IsInf(q, 0) {
			return fmt.Errorf("cpu_quota: %s is not a number of CPUs; write it like cpu_quota = 1.5, or 0 for no quota", tomlValue(t.CPUQuota))
		}
		s.CPUQuota = q
	}
	if memoryMax(s.Memory, s.KillRatio) == math.MaxInt64 {
		return fmt.Errorf("memory: %d bytes times kill_ratio %g is too large; write a smaller memory or kill_ratio", s.Memory, s.KillRatio)
	}
	return nil
}

// tomlBytes reads a memory value: a string for ParseBytes or a number of
// bytes.
func tomlBytes(v any) (int64, error) {
	var n int64
	switch v := v.(type) {
	case string:
		var err error
		if n, err = ParseBytes(v); err != nil {
			return 0, err
		}
	case int64:
		n = v
	default:
		return 0, fmt.Errorf(`%s is not a size; write it like "512MB"`, tomlValue(v))
	}
	if n <= 0 {
		return 0, fmt.Errorf(`%s is not a size above 0; write it like "512MB"`, tomlValue(v))
	}
	return n, nil
}

// tomlNumber reads a TOML integer or float as a float.
func tomlNumber(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, !math.IsNaN(v)
	}
	return 0, false
}

// tomlValue shows a decoded TOML value the way it was written.
func tomlValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// unitBytes returns the bytes in one unit of a size, for a lowercase
// unit. The multiples are binary, which is what Heroku means by MB and GB:
// its 512 MB dyno reports R14 as "mem=520M(101.7%)", and 520/1.017 is
// 511.3, so the quota is 512 MiB. systemd and Docker read M and G the same
// way.
func unitBytes(unit string) (int64, bool) {
	switch unit {
	case "", "b":
		return 1, true
	case "k", "kb", "kib":
		return 1 << 10, true
	case "m", "mb", "mib":
		return 1 << 20, true
	case "g", "gb", "gib":
		return 1 << 30, true
	case "t", "tb", "tib":
		return 1 << 40, true
	}
	return 0, false
}

// ParseBytes parses a size such as "512MB", "2.5GB", "1GiB" or "1024"
// (bytes). K, M, G and T, with or without B, and KiB, MiB, GiB and TiB are
// all multiples of 1024, in either case; a space may separate the number
// from the unit. A fraction of a byte is dropped.
func ParseBytes(s string) (int64, error) {
	bad := fmt.Errorf(`%q is not a size; write it like "512MB"`, s)
	text := strings.TrimSpace(s)
	i := 0
	for i < len(text) && text[i] >= '0' && text[i] <= '9' {
		i++
	}
	whole := text[:i]
	var frac string
	if i < len(text) && text[i] == '.' {
		j := i + 1
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		frac = text[i+1 : j]
		if frac == "" {
			return 0, bad
		}
		i = j
	}
	if whole == "" {
		return 0, bad
	}
	unit, ok := unitBytes(strings.ToLower(strings.TrimLeft(text[i:], " ")))
	if !ok {
		return 0, bad
	}
	// bytes = (whole.frac × 10^len(frac)) × unit / 10^len(frac), exactly.
	n, _ := new(big.Int).SetString(whole+frac, 10)
	n.Mul(n, big.NewInt(unit))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !n.IsInt64() {
		return 0, fmt.Errorf("%q is too large a size", s)
	}
	return n.Int64(), nil
}
