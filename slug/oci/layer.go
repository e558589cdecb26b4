package oci

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/pgzip"
)

// epoch is the time of every entry dyno writes into a layer, and of the
// archive's own entries: 1980-01-01, as in slugs (see slug.Pack), so that
// the bytes depend on the content alone.
var epoch = time.Unix(315532800, 0).UTC()

// Layers are compressed as slugs are: level 6 in 1 MiB blocks, whose
// output depends on the input alone, not on how many cores compress it.
const (
	gzipLevel     = 6
	gzipBlockSize = 1 << 20
)

// A blob is one content-addressed file of the image: a layer, the config
// or the manifest.
type blob struct {
	desc   v1.Descriptor
	diffID v1.Hash // a layer's uncompressed digest; zero otherwise
	open   func() (io.ReadCloser, error)
}

// bytesBlob is a blob held in memory.
func bytesBlob(mt types.MediaType, b []byte) blob {
	sum := sha256.Sum256(b)
	return blob{
		desc: v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}},
		open: func() (io.ReadCloser, error) { return io.NopCloser(&byteReader{b: b}), nil },
	}
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// hashOf returns the v1.Hash of a finished sha256.
func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeLayer writes the tar stream fill makes, gzip'd, to a new file at
// path and returns it as a layer blob: its digest (of the gzip), its
// diff ID (of the tar) and its size, all taken as it is written.
func writeLayer(path string, fill func(tw *tar.Writer) error) (blob, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return blob{}, fmt.Errorf("write layer: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(path)
		}
	}()
	digest, diff := sha256.New(), sha256.New()
	out := &countingWriter{w: io.MultiWriter(f, digest)}
	zw, err := pgzip.NewWriterLevel(out, gzipLevel)
	if err != nil {
		return blob{}, err
	}
	// No name and no time in the gzip header: the same tar, the same bytes.
	zw.ModTime = time.Unix(0, 0)
	if err := zw.SetConcurrency(gzipBlockSize, 4); err != nil {
		return blob{}, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	if err := fill(tw); err != nil {
		return blob{}, err
	}
	if err := tw.Close(); err != nil {
		return blob{}, fmt.Errorf("write layer %s: %w", path, err)
	}
	if err := zw.Close(); err != nil {
		return blob{}, fmt.Errorf("write layer %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return blob{}, fmt.Errorf("write layer %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return blob{}, fmt.Errorf("write layer %s: %w", path, err)
	}
	ok = true
	return fileBlob(path, v1.Descriptor{MediaType: types.OCILayer, Size: out.n, Digest: hashOf(digest)}, hashOf(diff)), nil
}

// fileBlob is a blob whose bytes are the file at path.
func fileBlob(path string, desc v1.Descriptor, diffID v1.Hash) blob {
	return blob{desc: desc, diffID: diffID, open: func() (io.ReadCloser, error) { return os.Open(path) }}
}
