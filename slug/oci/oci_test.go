package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dyno-run/dyno/slug"
)

// hostRoot makes a small host tree: what a dyno may read, and what it
// may not.
func hostRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"usr/bin/tool":         0o755,
		"usr/bin/setuid":       0o4755,
		"etc/passwd":           0o644,
		"etc/shadow":           0o600,
		"etc/private/key":      0o644,
		"usr/lib/libx.so":      0o644,
		"usr/share/doc/readme": 0o644,
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "etc/private"), 0o700)
	if err := os.Link(filepath.Join(root, "usr/lib/libx.so"), filepath.Join(root, "usr/lib/libx.so.1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	return root
}

// layerEntries lists a gzip'd layer's headers by name.
func layerEntries(t *testing.T, b blob) map[string]*tar.Header {
	t.Helper()
	rc, err := b.open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	diff := sha256.New()
	tr := tar.NewReader(io.TeeReader(zr, diff))
	m := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m[h.Name] = h
	}
	io.Copy(io.Discard, tr)
	io.Copy(diff, zr)
	if got := hex.EncodeToString(diff.Sum(nil)); got != b.diffID.Hex {
		t.Errorf("layer's diff ID is %s, its tar hashes to %s", b.diffID.Hex, got)
	}
	return m
}

func TestHostBaseSeesWhatADynoSees(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads 0600 files anyway; what matters is the mode test,
		// which does not depend on who runs it.
		t.Log("as root: the filter is by mode bits, not by what this process can read")
	}
	root := hostRoot(t)
	cache := t.TempDir()
	made := 0
	base, err := HostBase(root, []string{"/usr", "/bin", "/etc", "/lib32"}, cache, func(string) { made++ })
	if err != nil {
		t.Fatal(err)
	}
	if made != 1 {
		t.Errorf("progress heard %d times making a new base, want 1", made)
	}
	m := layerEntries(t, base.layers[0])
	for _, name := range []string{"etc/shadow", "etc/private/key"} {
		if _, ok := m[name]; ok {
			t.Errorf("%s is in the base: others may not read it, so a dyno does not see it", name)
		}
	}
	if h := m["etc/private/"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("etc/private/ missing: a dyno sees the folder, not its contents")
	}
	if h := m["usr/bin/setuid"]; h == nil || h.Mode&0o6000 != 0 || h.Mode&0o777 != 0o755 {
		t.Errorf("usr/bin/setuid = %+v, want mode 0755 without setuid", h)
	}
	if h := m["bin"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin = %+v, want a symlink to usr/bin", h)
	}
	if h := m["usr/lib/libx.so.1"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "usr/lib/libx.so" {
		t.Errorf("usr/lib/libx.so.1 = %+v, want a hard link to usr/lib/libx.so", h)
	}
	if h := m["tmp/"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("tmp/ = %+v, want mode 1777", h)
	}
	for name, h := range m {
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s dated %v, want %v", name, h.ModTime, epoch)
		}
	}

	// The same host again: the kept layer, nothing made.
	again, err := HostBase(root, []string{"/usr", "/bin", "/etc", "/lib32"}, cache, func(string) { made++ })
	if err != nil {
		t.Fatal(err)
	}
	if made != 1 || again.layers[0].desc.Digest != base.layers[0].desc.Digest {
		t.Errorf("unchanged host: made %d times, digests %s and %s", made, base.layers[0].desc.Digest, again.layers[0].desc.Digest)
	}
	// A changed host: a new layer, the old one dropped from the cache.
	if err := os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("new\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	changed, err := HostBase(root, []string{"/usr", "/bin", "/etc"}, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	if changed.layers[0].desc.Digest == base.layers[0].desc.Digest {
		t.Error("a changed file gave the same base layer")
	}
	kept, _ := filepath.Glob(filepath.Join(cache, "host-*.tar.gz"))
	if len(kept) != 1 {
		t.Errorf("cache holds %d host layers, want 1: %v", len(kept), kept)
	}
}

// testImage is an image of a small slug on a small host base.
func testImage(t *testing.T, base *Base) *Image {
	t.Helper()
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, ".profile.d"), 0o755)
	os.WriteFile(filepath.Join(tree, ".profile.d", "greet.sh"), []byte("export GREETING=hello\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "Procfile"), []byte("web: ./server\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "server"), []byte("#!/bin/sh\necho serving\n"), 0o755)
	store := &slug.Store{Dir: t.TempDir()}
	s, _, err := store.Pack(tree, slug.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &Image{
		App: "demo", Version: 7, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Revision: "abc123",
		ProcessTypes: map[string]string{"web": "./server", "worker": "echo 'it''s work' && sleep 1", "release": "echo migrate"},
		Slug:         func() (io.ReadCloser, error) { return store.Open(s.Digest) },
		Base:         base, Work: t.TempDir(),
	}
}

// readLayout reads an archive Write made: its files by name.
func readLayout(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			files[h.Name], _ = io.ReadAll(tr)
		}
	}
}

func TestWriteIsAnOCILayoutAndDeterministic(t *testing.T) {
	base, err := HostBase(hostRoot(t), []string{"/usr", "/bin", "/etc"}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	im := testImage(t, base)
	var first, second bytes.Buffer
	d1, err := Write(&first, im)
	if err != nil {
		t.Fatal(err)
	}
	im.Work = t.TempDir()
	d2, err := Write(&second, im)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatalf("the same image twice: digests %s and %s, bytes equal %v", d1, d2, bytes.Equal(first.Bytes(), second.Bytes()))
	}

	files := readLayout(t, first.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", files["oci-layout"])
	}
	index, err := v1.ParseIndexManifest(bytes.NewReader(files["index.json"]))
	if err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != d1 || index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "demo:v7" {
		t.Fatalf("index = %+v", index)
	}
	blobOf := func(h v1.Hash) []byte {
		b, ok := files["blobs/sha256/"+h.Hex]
		if !ok {
			t.Fatalf("blob %s missing", h)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != h.Hex {
			t.Fatalf("blob %s does not hash to its name", h)
		}
		return b
	}
	m, err := v1.ParseManifest(bytes.NewReader(blobOf(d1)))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(blobOf(m.Config.Digest)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 3 || len(cfg.RootFS.DiffIDs) != 3 || len(cfg.History) != 3 {
		t.Fatalf("%d layers, %d diff IDs, %d history entries; want base, slug, launcher", len(m.Layers), len(cfg.RootFS.DiffIDs), len(cfg.History))
	}
	c := cfg.Config
	if !slices.Equal(c.Entrypoint, []string{"/dyno/launch"}) || !slices.Equal(c.Cmd, []string{"web"}) || c.User != "12345:12345" || c.WorkingDir != "/app" {
		t.Errorf("config = entrypoint %q cmd %q user %q workdir %q", c.Entrypoint, c.Cmd, c.User, c.WorkingDir)
	}
	if !slices.Contains(c.Env, "PORT=5000") || !slices.Contains(c.Env, "HOME=/app") || !slices.Contains(c.Env, basePath) {
		t.Errorf("env = %q", c.Env)
	}
	if !cfg.Created.Time.Equal(im.Created) || c.Labels["org.opencontainers.image.revision"] != "abc123" {
		t.Errorf("created %v, labels %v", cfg.Created, c.Labels)
	}
	for i, l := range m.Layers {
		b := blob{desc: l, diffID: cfg.RootFS.DiffIDs[i], open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blobOf(l.Digest))), nil }}
		entries := layerEntries(t, b)
		switch i {
		case 1:
			for _, name := range []string{"app/", "app/server", "app/.profile.d/greet.sh", "app/Procfile"} {
				h := entries[name]
				if h == nil || h.Uid != UID || h.Gid != GID {
					t.Errorf("slug layer %s = %+v, want it owned by %d:%d", name, h, UID, GID)
				}
			}
		case 2:
			if h := entries["dyno/launch"]; h == nil || h.Mode != 0o755 || h.Uid != 0 {
				t.Errorf("dyno/launch = %+v, want root's, mode 0755", h)
			}
		}
	}
}

func TestArchiveBaseKeepsItsLayers(t *testing.T) {
	base, err := HostBase(hostRoot(t), []string{"/usr", "/etc"}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var first bytes.Buffer
	if _, err := Write(&first, testImage(t, base)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "base.tar")
	os.WriteFile(path, first.Bytes(), 0o644)
	ab, err := ArchiveBase(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ab.Close()
	if len(ab.layers) != 3 || ab.layers[0].desc.Digest != base.layers[0].desc.Digest {
		t.Fatalf("archive base has %d layers, first %v; want the 3 of the image, first %v", len(ab.layers), ab.layers[0].desc.Digest, base.layers[0].desc.Digest)
	}
	var second bytes.Buffer
	if _, err := Write(&second, testImage(t, ab)); err != nil {
		t.Fatal(err)
	}
	files := readLayout(t, second.Bytes())
	var index v1.IndexManifest
	json.Unmarshal(files["index.json"], &index)
	m, _ := v1.ParseManifest(bytes.NewReader(files["blobs/sha256/"+index.Manifests[0].Digest.Hex]))
	if len(m.Layers) != 5 {
		t.Errorf("an image on a 3-layer base has %d layers, want 5", len(m.Layers))
	}

	for name, content := range map[string]string{"empty": "", "not a tar": "hello"} {
		bad := filepath.Join(t.TempDir(), "bad.tar")
		os.WriteFile(bad, []byte(content), 0o644)
		if _, err := ArchiveBase(bad); err == nil {
			t.Errorf("%s: ArchiveBase accepted it", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
