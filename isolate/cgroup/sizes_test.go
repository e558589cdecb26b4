package cgroup

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1024", 1024},
		{"1024B", 1024},
		{"512MB", 512 << 20},
		{"512mb", 512 << 20},
		{"512M", 512 << 20},
		{"512MiB", 512 << 20},
		{"512 MB", 512 << 20},
		{" 1GiB ", 1 << 30},
		{"1GB", 1 << 30},
		{"1g", 1 << 30},
		{"2.5GB", 2560 << 20},
		{"14GB", 14336 << 20},
		{"1.5KB", 1536},
		{"0.1KB", 102}, // 102.4: the fraction of a byte is dropped
		{"1TB", 1 << 40},
		{"8388607TB", 8388607 << 40},
		{"007k", 7 << 10},
		{"9223372036854775807", math.MaxInt64},
	} {
		got, err := ParseBytes(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBytesErrors(t *testing.T) {
	for _, in := range []string{
		"", " ", "MB", "12XB", "-1", "+1", "1e9", ".5GB", "1.GB", "1..5GB", "1.5.5", "0x10",
		"1 2", "512 M B", "512MBs", "9223372036854775808", "8388608TB", "NaN", "∞",
	} {
		got, err := ParseBytes(in)
		if err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
	_, err := ParseBytes("12XB")
	if want := `"12XB" is not a size; write it like "512MB"`; err == nil || err.Error() != want {
		t.Errorf("ParseBytes(12XB) error = %v, want %q", err, want)
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, seed := range []string{"512MB", "2.5GB", "1GiB", "1024", "0.1KB", "12XB", "", "9223372036854775807", "1 t"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d, negative", s, n)
		}
		// Whatever parses also parses as its plain byte count.
		again, err := ParseBytes(strconv.FormatInt(n, 10))
		if err != nil || again != n {
			t.Fatalf("ParseBytes(%q) = %d, but ParseBytes(%d) = %d, %v", s, n, n, again, err)
		}
	})
}

func TestDefaultSizes(t *testing.T) {
	sizes := DefaultSizes()
	for _, tt := range []struct {
		name   string
		memory int64
		pids   int64
	}{
		{"eco", 512 << 20, 256},
		{"basic", 512 << 20, 256},
		{"standard-1x", 512 << 20, 256},
		{"standard-2x", 1 << 30, 512},
		{"performance-m", 2560 << 20, 16384},
		{"performance-l", 14 << 30, 32768},
	} {
		s, ok := sizes[tt.name]
		if !ok {
			t.Errorf("no size %q", tt.name)
			continue
		}
		if s.Name != tt.name || s.Memory != tt.memory || s.Pids != tt.pids || s.KillRatio != 2 {
			t.Errorf("%s = %+v, want memory %d, pids %d, kill ratio 2", tt.name, s, tt.memory, tt.pids)
		}
		if s.CPUWeight < minCPUWeight || s.CPUWeight > maxCPUWeight {
			t.Errorf("%s cpu weight %d out of range", tt.name, s.CPUWeight)
		}
	}
	if len(sizes) != 6 {
		t.Errorf("DefaultSizes has %d sizes, want 6", len(sizes))
	}
	// Each call returns its own map.
	delete(sizes, "eco")
	if _, ok := DefaultSizes()["eco"]; !ok {
		t.Error("DefaultSizes shares its map between calls")
	}
}

func TestSizeLimits(t *testing.T) {
	got := DefaultSizes()["standard-1x"].Limits()
	want := Limits{MemoryMax: 1 << 30, SwapMax: 0, PidsMax: 256, CPUWeight: 100, CPUPeriod: 100 * time.Millisecond}
	if got != want {
		t.Errorf("standard-1x Limits() = %+v, want %+v", got, want)
	}
	if err := got.check(); err != nil {
		t.Errorf("standard-1x limits do not check: %v", err)
	}

	s := Size{Memory: 100 << 20, KillRatio: 1.5, Pids: 10, CPUWeight: 50, CPUQuota: 0.5}
	got = s.Limits()
	want = Limits{MemoryMax: 150 << 20, PidsMax: 10, CPUWeight: 50, CPUQuota: 50 * time.Millisecond, CPUPeriod: 100 * time.Millisecond}
	if got != want {
		t.Errorf("Limits() = %+v, want %+v", got, want)
	}
	// A kill ratio under 1 would kill below the quota: it counts as 1.
	if got := (Size{Memory: 1 << 20}).Limits().MemoryMax; got != 1<<20 {
		t.Errorf("MemoryMax with no kill ratio = %d, want %d", got, 1<<20)
	}
}

func writeDynoToml(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dyno.toml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSizesMissingFile(t *testing.T) {
	sizes, err := LoadSizes(filepath.Join(t.TempDir(), "dyno.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != len(DefaultSizes()) || sizes["standard-2x"] != DefaultSizes()["standard-2x"] {
		t.Errorf("LoadSizes of a missing file = %+v, want DefaultSizes", sizes)
	}
}

func TestLoadSizes(t *testing.T) {
	path := writeDynoToml(t, `
# Other parts of dyno read other tables.
[router]
port = 5000

[sizes.standard-1x]
memory = "1GB"
pids = 512

[sizes.standard-2x]
kill_ratio = 1.5
cpu_quota = 2

[sizes.tiny]
memory = 67108864
cpu_weight = 10
cpu_quota = 0.25
`)
	sizes, err := LoadSizes(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Size{
		"standard-1x": {Name: "standard-1x", Memory: 1 << 30, KillRatio: 2, Pids: 512, CPUWeight: 100},
		"standard-2x": {Name: "standard-2x", Memory: 1 << 30, KillRatio: 1.5, Pids: 512, CPUWeight: 200, CPUQuota: 2},
		// A new size starts from the default standard-1x, not the
		// one this file overrides.
		"tiny":          {Name: "tiny", Memory: 64 << 20, KillRatio: 2, Pids: 256, CPUWeight: 10, CPUQuota: 0.25},
		"performance-l": DefaultSizes()["performance-l"],
	} {
		if got := sizes[name]; got != want {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	if got, want := sizes["tiny"].Limits().CPUQuota, 25*time.Millisecond; got != want {
		t.Errorf("tiny CPUQuota = %v, want %v", got, want)
	}
}

func TestLoadSizesForms(t *testing.T) {
	for _, content := range []string{
		"[sizes.standard-1x]\nmemory = \"1GB\"\n",
		"[sizes]\nstandard-1x.memory = \"1GB\"\n",
		"sizes.standard-1x.memory = \"1GB\"\n",
		"sizes = { standard-1x = { memory = \"1GB\" } }\n",
	} {
		sizes, err := LoadSizes(writeDynoToml(t, content))
		if err != nil {
			t.Errorf("LoadSizes(%q): %v", content, err)
			continue
		}
		if got := sizes["standard-1x"].Memory; got != 1<<30 {
			t.Errorf("LoadSizes(%q): standard-1x memory %d, want %d", content, got, 1<<30)
		}
	}
}

func TestLoadSizesErrors(t *testing.T) {
	for _, tt := range []struct {
		name, content, want string
	}{
		{"bad size", "[sizes.standard-1x]\nmemory = \"12XB\"\n",
			`sizes.standard-1x.memory: "12XB" is not a size; write it like "512MB"`},
		{"zero size", "[sizes.standard-1x]\nmemory = 0\n",
			`sizes.standard-1x.memory: 0 is not a size above 0; write it like "512MB"`},
		{"float size", "[sizes.standard-1x]\nmemory = 1.5\n",
			`sizes.standard-1x.memory: 1.5 is not a size; write it like "512MB"`},
		{"unknown key", "[sizes.standard-1x]\nmemroy = \"1GB\"\n",
			`sizes.standard-1x.memroy: unknown key; a size takes memory, kill_ratio, pids, cpu_weight and cpu_quota`},
		{"unknown key in new size", "[sizes.big]\nmemory = \"1GB\"\nswap = \"1GB\"\n",
			`sizes.big.swap: unknown key`},
		{"low kill ratio", "[sizes.eco]\nkill_ratio = 0.5\n",
			`sizes.eco.kill_ratio: 0.5 is not a ratio of at least 1; write it like kill_ratio = 2`},
		{"string pids", "[sizes.eco]\npids = \"many\"\n",
			`sizes.eco.pids: "many" is not a count of processes; write it like pids = 256`},
		{"weight out of range", "[sizes.eco]\ncpu_weight = 20000\n",
			`sizes.eco.cpu_weight: 20000 is not a weight from 1 to 10000; write it like cpu_weight = 100`},
		{"tiny quota", "[sizes.eco]\ncpu_quota = 0.001\n",
			`sizes.eco.cpu_quota: 0.001 is not a number of CPUs; write it like cpu_quota = 1.5, or 0 for no quota`},
		{"overflow", "[sizes.eco]\nmemory = \"5000000TB\"\nkill_ratio = 2\n",
			`sizes.eco.memory: 5497558138880000000 bytes times kill_ratio 2 is too large`},
		{"quoted name", "[sizes.\"a b\"]\npids = 0\n",
			`sizes."a b".pids: 0 is not a count`},
		{"sizes not a table", "sizes = 3\n",
			`sizes: not a table; write each size as a table, like [sizes.standard-1x]`},
		{"size not a table", "[sizes]\nfoo = 3\n",
			`sizes.foo: not a table; write a size as a table, like [sizes.foo] with memory = "512MB" below it`},
		{"syntax", "[sizes.eco\nmemory = 1\n", `toml: line `},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeDynoToml(t, tt.content)
			_, err := LoadSizes(path)
			if err == nil {
				t.Fatalf("LoadSizes succeeded, want %q", tt.want)
			}
			if want := path + ": " + tt.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("LoadSizes error\n%s\nwant it to begin\n%s", err, want)
			}
		})
	}
}

func TestLoadSizesUnreadable(t *testing.T) {
	dir := t.TempDir() // a directory where the file should be
	_, err := LoadSizes(dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadSizes(directory) = %v, want an error naming it", err)
	}
}
