package oci

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// maxJSON bounds an index, manifest or config read from a base archive.
const maxJSON = 4 << 20

// ArchiveBase is the base image in the OCI image archive at path (a tar
// of an OCI image layout, as `skopeo copy ... oci-archive:FILE` and
// `podman save --format oci-archive` write): its layers, as they are
// (compressed or not), and its environment. An index of several
// platforms gives this machine's linux image.
func ArchiveBase(path string) (*Base, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open base image: %w", err)
	}
	b, err := archiveBase(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	b.close = f.Close
	return b, nil
}

type section struct{ off, size int64 }

// offsetReader counts the bytes read through it: after tar.Reader.Next
// the count is where the entry's data begins, since archive/tar reads
// headers in whole blocks and nothing ahead.
type offsetReader struct {
	r   io.Reader
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.off += int64(n)
	return n, err
}

func archiveBase(f *os.File, path string) (*Base, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("base image %s: %s; give an OCI image archive (skopeo copy docker://IMAGE oci-archive:%s)", path, fmt.Sprintf(format, a...), path)
	}
	// One pass: where each blob lies, and index.json.
	or := &offsetReader{r: f}
	tr := tar.NewReader(or)
	blobs := map[string]section{}
	var index []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("not a tar archive (%v)", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case name == "index.json":
			if index, err = io.ReadAll(io.LimitReader(tr, maxJSON)); err != nil {
				return nil, bad("read index.json: %v", err)
			}
		case strings.HasPrefix(name, "blobs/sha256/") && h.Typeflag == tar.TypeReg:
			blobs["sha256:"+strings.TrimPrefix(name, "blobs/sha256/")] = section{or.off, h.Size}
		}
	}
	if index == nil {
		return nil, bad("no index.json")
	}
	read := func(d v1.Descriptor) ([]byte, error) {
		s, ok := blobs[d.Digest.String()]
		if !ok {
			return nil, bad("blob %s is missing", d.Digest)
		}
		if s.size > maxJSON {
			return nil, bad("blob %s is %d bytes, too large for %s", d.Digest, s.size, d.MediaType)
		}
		b := make([]byte, s.size)
		if _, err := f.ReadAt(b, s.off); err != nil {
			return nil, bad("read blob %s: %v", d.Digest, err)
		}
		if got := bytesBlob("", b).desc.Digest; got != d.Digest {
			return nil, bad("blob %s has digest %s", d.Digest, got)
		}
		return b, nil
	}
	// Follow the index to one image manifest: the first for linux and
	// this architecture, through nested indexes.
	var manifest *v1.Manifest
	for depth, raw := 0, index; manifest == nil; depth++ {
		if depth > 4 {
			return nil, bad("indexes nested more than 4 deep")
		}
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, bad("index: %v", err)
		}
		var pick *v1.Descriptor
		for i, d := range im.Manifests {
			if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != runtime.GOARCH) {
				continue
			}
			pick = &im.Manifests[i]
			break
		}
		if pick == nil {
			return nil, bad("no image for linux/%s", runtime.GOARCH)
		}
		if raw, err = read(*pick); err != nil {
			return nil, err
		}
		switch pick.MediaType {
		case types.OCIImageIndex, types.DockerManifestList:
			continue
		case types.OCIManifestSchema1, types.DockerManifestSchema2:
			if manifest, err = v1.ParseManifest(bytes.NewReader(raw)); err != nil {
				return nil, bad("manifest: %v", err)
			}
		default:
			return nil, bad("unknown media type %s", pick.MediaType)
		}
	}
	rawConfig, err := read(manifest.Config)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, bad("config: %v", err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		return nil, bad("an image for %s/%s; this machine's dynos are linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if len(cfg.RootFS.DiffIDs) != len(manifest.Layers) {
		return nil, bad("%d layers but %d diff IDs", len(manifest.Layers), len(cfg.RootFS.DiffIDs))
	}
	b := &Base{env: cfg.Config.Env, arch: cfg.Architecture}
	for i, d := range manifest.Layers {
		s, ok := blobs[d.Digest.String()]
		if !ok {
			return nil, bad("layer %s is missing", d.Digest)
		}
		if s.size != d.Size {
			return nil, bad("layer %s is %d bytes, its manifest says %d", d.Digest, s.size, d.Size)
		}
		// An OCI layer keeps its media type; Docker's are renamed to
		// their OCI equals, which an OCI manifest must use.
		switch d.MediaType {
		case types.DockerLayer:
			d.MediaType = types.OCILayer
		case types.DockerUncompressedLayer:
			d.MediaType = types.OCIUncompressedLayer
		case types.OCILayer, types.OCIUncompressedLayer, types.OCILayerZStd:
		default:
			return nil, bad("layer %s has media type %s, which dyno does not copy", d.Digest, d.MediaType)
		}
		off, size := s.off, s.size
		b.layers = append(b.layers, blob{
			desc:   v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest},
			diffID: cfg.RootFS.DiffIDs[i],
			open:   func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, off, size)), nil },
		})
	}
	// Empty-layer history entries (ENV, CMD) have no layer of their own;
	// the history is kept whole when it matches the layers, else dropped.
	n := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			n++
		}
	}
	if n == len(b.layers) {
		b.history = cfg.History
	}
	if !hasPath(b.env) {
		b.env = append([]string{basePath}, b.env...)
	}
	return b, nil
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

// jsonBlob marshals v as the blob of media type mt.
func jsonBlob(mt types.MediaType, v any) (blob, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return blob{}, err
	}
	return bytesBlob(mt, b), nil
}
