// Package oci turns a slug into an OCI image: a base (the stack), the
// slug at /app, and a launcher that runs a process type the way a dyno
// does. The formats are go-containerregistry's types (pkg/v1), written
// as an OCI image layout in one tar, the "oci-archive" that skopeo and
// podman read.
//
// Only pkg/v1 and pkg/v1/types are used: the rest of the library
// compiles regular expressions at start-up, which every dyno process,
// dyno's own init included, would pay.
package oci

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/pgzip"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// User is the user an image's processes run as, as a dyno's do: uid and
// gid 12345 (isolate's u12345), not root. /app is theirs.
const (
	UID = 12345
	GID = 12345
)

// Port is the PORT of an image's process when the runtime sets none.
const Port = 5000

// An Image is what Write makes an image of.
type Image struct {
	App          string            // the app's name
	Version      int               // the release's version: the image is APP:vN
	Created      time.Time         // the release's time, the image's creation
	Revision     string            // the source's commit, if known
	ProcessTypes map[string]string // the release's process types, by name
	// Slug opens the slug's .tgz (slug.Store.Open: verified).
	Slug func() (io.ReadCloser, error)
	Base *Base
	// Work is a folder on the output's filesystem for the slug layer
	// while the archive is written.
	Work string
}

// Ref is the name the archive gives the image: APP:vN, which podman load
// makes localhost/APP:vN.
func (im *Image) Ref() string { return im.App + ":v" + strconv.Itoa(im.Version) }

// Write writes im as an OCI image archive to w and returns the image
// manifest's digest. The same Image gives the same bytes.
func Write(w io.Writer, im *Image) (v1.Hash, error) {
	if len(im.ProcessTypes) == 0 {
		return v1.Hash{}, errors.New("the release has no process types; add a Procfile and deploy again")
	}
	slugLayer, err := writeLayer(im.Work+"/slug-layer.tar.gz", func(tw *tar.Writer) error { return copySlug(tw, im.Slug) })
	if err != nil {
		return v1.Hash{}, err
	}
	launch, err := launchLayer(im)
	if err != nil {
		return v1.Hash{}, err
	}
	layers := append(slices.Clone(im.Base.layers), slugLayer, launch)

	created := v1.Time{Time: im.Created.UTC().Truncate(time.Second)}
	history := slices.Clone(im.Base.history)
	if len(history) == 0 {
		for range im.Base.layers {
			history = append(history, v1.History{Created: created, Comment: "base"})
		}
	}
	history = append(history,
		v1.History{Created: created, CreatedBy: "dyno export oci: the slug of " + im.Ref() + " at /app"},
		v1.History{Created: created, CreatedBy: "dyno export oci: /dyno/launch, which runs a process type as a dyno does"})
	cfg := v1.ConfigFile{
		Architecture: im.Base.arch,
		OS:           "linux",
		Created:      created,
		History:      history,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint:   []string{launchPath},
			Cmd:          []string{defaultType(im.ProcessTypes)},
			Env:          imageEnv(im.Base.env),
			User:         fmt.Sprintf("%d:%d", UID, GID),
			WorkingDir:   "/app",
			ExposedPorts: map[string]struct{}{strconv.Itoa(Port) + "/tcp": {}},
			// dyno stops a dyno with SIGTERM; it is the default, said for
			// runtimes that read it.
			StopSignal: "SIGTERM",
			Labels: map[string]string{
				"org.opencontainers.image.title":   im.App,
				"org.opencontainers.image.version": "v" + strconv.Itoa(im.Version),
				"org.opencontainers.image.created": created.Format(time.RFC3339),
				"run.dyno.process-types":           strings.Join(slices.Sorted(maps.Keys(im.ProcessTypes)), ","),
			},
		},
	}
	if im.Revision != "" {
		cfg.Config.Labels["org.opencontainers.image.revision"] = im.Revision
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	}
	config, err := jsonBlob(types.OCIConfigJSON, cfg)
	if err != nil {
		return v1.Hash{}, err
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: config.desc}
	for _, l := range layers {
		m.Layers = append(m.Layers, l.desc)
	}
	manifest, err := jsonBlob(types.OCIManifestSchema1, m)
	if err != nil {
		return v1.Hash{}, err
	}
	desc := manifest.desc
	desc.Platform = &v1.Platform{OS: "linux", Architecture: im.Base.arch}
	desc.Annotations = map[string]string{"org.opencontainers.image.ref.name": im.Ref()}
	index, err := jsonBlob(types.OCIImageIndex, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{desc}})
	if err != nil {
		return v1.Hash{}, err
	}
	blobs := append([]blob{config, manifest}, layers...)
	if err := writeLayout(w, index, blobs); err != nil {
		return v1.Hash{}, err
	}
	return manifest.desc.Digest, nil
}

// defaultType is the process type an image runs with no arguments: web
// if there is one, else the first by name.
func defaultType(types map[string]string) string {
	if _, ok := types["web"]; ok {
		return "web"
	}
	return slices.Sorted(maps.Keys(types))[0]
}

// imageEnv is the base's environment with a dyno's own: HOME=/app and
// PORT=5000. No config var: those belong to where the image runs.
func imageEnv(base []string) []string {
	env := slices.DeleteFunc(slices.Clone(base), func(e string) bool {
		return strings.HasPrefix(e, "HOME=") || strings.HasPrefix(e, "PORT=")
	})
	return append(env, "HOME=/app", "PORT="+strconv.Itoa(Port))
}

// copySlug writes the slug's entries under app/, owned by the image's
// user, as a dyno's /app is its user's to write.
func copySlug(tw *tar.Writer, open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := pgzip.NewReader(rc)
	if err != nil {
		return fmt.Errorf("read slug: %w", err)
	}
	defer zr.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "app/", Mode: 0o755, Uid: UID, Gid: GID, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read slug: %w", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name == "" || name == "/" {
			continue
		}
		out := &tar.Header{Typeflag: h.Typeflag, Name: "app/" + name, Linkname: h.Linkname, Mode: h.Mode, Size: h.Size,
			Uid: UID, Gid: GID, ModTime: h.ModTime, Format: tar.FormatPAX}
		if h.Typeflag == tar.TypeLink {
			out.Linkname = "app/" + strings.TrimPrefix(h.Linkname, "./")
		}
		if err := tw.WriteHeader(out); err != nil {
			return fmt.Errorf("slug entry %s: %w", name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return fmt.Errorf("slug entry %s: %w", name, err)
			}
		}
	}
}

// layoutVersion is the oci-layout file of an image layout.
type layoutVersion struct {
	ImageLayoutVersion string `json:"imageLayoutVersion"`
}

// writeLayout writes an OCI image layout as a tar: oci-layout,
// index.json and blobs/sha256/*, each blob once, in digest order.
func writeLayout(w io.Writer, index blob, blobs []blob) error {
	tw := tar.NewWriter(w)
	layout, err := jsonBlob("", layoutVersion{ImageLayoutVersion: "1.0.0"})
	if err != nil {
		return err
	}
	file := func(name string, b blob) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: b.desc.Size, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		rc, err := b.open()
		if err != nil {
			return err
		}
		defer rc.Close()
		n, err := io.Copy(tw, rc)
		if err != nil {
			return fmt.Errorf("write blob %s: %w", b.desc.Digest, err)
		}
		if n != b.desc.Size {
			return fmt.Errorf("write blob %s: %d bytes, want %d", b.desc.Digest, n, b.desc.Size)
		}
		return nil
	}
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
	}
	if err := file("oci-layout", layout); err != nil {
		return err
	}
	if err := file("index.json", index); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	byDigest := map[string]blob{}
	for _, b := range blobs {
		byDigest[b.desc.Digest.Hex] = b
	}
	for _, h := range slices.Sorted(maps.Keys(byDigest)) {
		if err := file("blobs/sha256/"+h, byDigest[h]); err != nil {
			return err
		}
	}
	return tw.Close()
}
