package slug

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// makeBenchTree writes a build dir like a real app's: files small text
// files of source-like, compressible content in directories of 100, and
// 8 larger incompressible files (vendored binaries, images), totalling
// about size bytes, half of them text. The content depends only on the
// arguments.
func makeBenchTree(dir string, files int, size int64) error {
	rng := rand.New(rand.NewPCG(1, 2))
	words := make([]string, 2000)
	for i := range words {
		b := make([]byte, 2+rng.IntN(9))
		for j := range b {
			b[j] = "abcdefghijklmnopqrstuvwxyz_"[rng.IntN(27)]
		}
		words[i] = string(b)
	}
	// Word frequencies follow Zipf's law, as identifiers and keywords in
	// source code do; it makes the text about as compressible as code.
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(len(words)-1))
	const big = 8
	small := files - big
	textPerFile := size / 2 / int64(small)
	var sb strings.Builder
	for i := range small {
		sub := filepath.Join(dir, fmt.Sprintf("src/pkg%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
		}
		sb.Reset()
		// Sizes vary from a quarter to 1.75 times the mean.
		n := textPerFile/4 + rng.Int64N(textPerFile*3/2)
		for int64(sb.Len()) < n {
			sb.WriteString(strings.Repeat("\t", rng.IntN(4)))
			for range 3 + rng.IntN(8) {
				sb.WriteString(words[zipf.Uint64()])
				sb.WriteByte(" .(,"[rng.IntN(4)])
			}
			sb.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.rb", i%100)), []byte(sb.String()), 0o644); err != nil {
			return err
		}
	}
	bin := filepath.Join(dir, "vendor/bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	buf := make([]byte, size/2/big)
	for i := range big {
		for j := 0; j+8 <= len(buf); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		if err := os.WriteFile(filepath.Join(bin, fmt.Sprintf("blob%d", i)), buf, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// ComparePackWithTar times Pack of dir into a fresh store and `tar czf`
// of the same dir, one after the other with the same warm page cache.
// tar is 0 when no tar program is installed.
func ComparePackWithTar(dir string) (dyno, tar time.Duration, err error) {
	work, err := os.MkdirTemp("", "slug-bench-")
	if err != nil {
		return 0, 0, err
	}
	defer fsutil.RemoveAll(work)

	s := &Store{Dir: filepath.Join(work, "slugs")}
	start := time.Now()
	if _, _, err := s.Pack(dir, PackOptions{MaxSize: 1 << 40}); err != nil {
		return 0, 0, err
	}
	dyno = time.Since(start)

	path, err := exec.LookPath("tar")
	if errors.Is(err, exec.ErrNotFound) {
		return dyno, 0, nil
	}
	if err != nil {
		return dyno, 0, err
	}
	start = time.Now()
	out, err := exec.Command(path, "czf", filepath.Join(work, "tar.tgz"), "-C", dir, ".").CombinedOutput()
	if err != nil {
		return dyno, 0, fmt.Errorf("tar czf: %v: %s", err, out)
	}
	return dyno, time.Since(start), nil
}

// BenchmarkPack packs a 20,000-file, 200 MB tree and, in the same run,
// times tar czf of it, reporting both and their ratio.
func BenchmarkPack(b *testing.B) {
	dir := b.TempDir()
	if err := makeBenchTree(dir, 20_000, 200<<20); err != nil {
		b.Fatal(err)
	}
	var dyno, tar time.Duration
	for b.Loop() {
		d, t, err := ComparePackWithTar(dir)
		if err != nil {
			b.Fatal(err)
		}
		dyno += d
		tar += t
	}
	b.ReportMetric(dyno.Seconds()/float64(b.N), "pack-s/op")
	if tar > 0 {
		b.ReportMetric(tar.Seconds()/float64(b.N), "tar-s/op")
		b.ReportMetric(float64(tar)/float64(dyno), "speedup")
	}
}

// BenchmarkUnpack unpacks the slug of BenchmarkPack's tree.
func BenchmarkUnpack(b *testing.B) {
	dir := b.TempDir()
	if err := makeBenchTree(filepath.Join(dir, "src"), 20_000, 200<<20); err != nil {
		b.Fatal(err)
	}
	s := &Store{Dir: filepath.Join(dir, "slugs")}
	slug, _, err := s.Pack(filepath.Join(dir, "src"), PackOptions{})
	if err != nil {
		b.Fatal(err)
	}
	fsutil.RemoveAll(filepath.Join(dir, "src"))
	b.SetBytes(slug.Size)
	for i := 0; b.Loop(); i++ {
		f, err := os.Open(slug.Path)
		if err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(dir, fmt.Sprint(i))
		err = Unpack(f, dst, Limits{})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fsutil.RemoveAll(dst)
		b.StartTimer()
	}
}
