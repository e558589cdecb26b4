package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/slug/oci"
)

func newExportOCICommand() *cobra.Command {
	var f exportFlags
	var out, base string
	cmd := &cobra.Command{
		Use:   "oci -o FILE.tar",
		Short: "Write a release as an OCI image archive (podman load, skopeo copy)",
		Long: `Export oci writes an OCI image archive of one release: a base layer (by
default the stack dyno's dynos run on: the host paths a dyno sees read-only,
as its unprivileged user sees them, made once and kept under
$DYNO_HOME/export; or --base, an OCI image archive of your own, such as a
Heroku stack saved with skopeo copy docker://heroku/heroku:24
oci-archive:heroku-24.tar), the slug at /app, and /dyno/launch as the
entrypoint, which runs a process type as a dyno does (.profile.d, .profile,
then the command through bash) as uid 12345, not root. PORT defaults to
5000; no config var is in the image. The archive names the image APP:vN, and
the same release gives the same digest every time.

  dyno export oci -a myapp -o myapp.tar
  podman load -i myapp.tar
  podman run --rm -e PORT=5000 -p 5000:5000 localhost/myapp:v7 web`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("-o FILE.tar is required: where to write the image archive")
			}
			p, err := loadPlan(f)
			if err != nil {
				return err
			}
			h, err := home()
			if err != nil {
				return err
			}
			// The output's folder first: a base takes minutes to make.
			work, err := os.MkdirTemp(filepath.Dir(out), ".dyno-export-")
			if err != nil {
				return fmt.Errorf("-o %s: %w; pick a file in a folder you can write", out, err)
			}
			defer os.RemoveAll(work)
			progress := func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), "-----> "+s) }
			var b *oci.Base
			if base != "" {
				b, err = oci.ArchiveBase(base)
			} else {
				b, err = oci.HostBase("/", isolate.DefaultReadOnly, filepath.Join(h.Dir, "export"), progress)
			}
			if err != nil {
				return err
			}
			defer b.Close()
			im := &oci.Image{
				App: p.App, Version: p.Release.Version, Created: p.Release.Time, Revision: p.Release.SourceVersion,
				ProcessTypes: p.Release.ProcessTypes, Base: b, Work: work,
				Slug: func() (io.ReadCloser, error) { return h.Slugs().Open(p.Release.Slug) },
			}
			digest, size, err := writeArchive(out, work, im)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Exported %s v%d to %s (%s, %.1f MB)\n", p.App, p.Release.Version, out, digest, float64(size)/1e6)
			fmt.Fprintf(w, "  podman load -i %s\n  podman run --rm -e PORT=5000 -p 5000:5000 localhost/%s web\n", out, im.Ref())
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "the image archive to write (replaced whole, never half-written)")
	cmd.Flags().StringVar(&base, "base", "", "an OCI image archive to build on instead of the host's stack")
	return cmd
}

// writeArchive writes im to out through a temporary file in work, on the
// same filesystem, renamed over out once whole.
func writeArchive(out, work string, im *oci.Image) (string, int64, error) {
	tmp := filepath.Join(work, "image.tar")
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, fmt.Errorf("write %s: %w", out, err)
	}
	digest, err := oci.Write(file, im)
	if err == nil {
		err = file.Sync()
	}
	var size int64
	if err == nil {
		var fi os.FileInfo
		if fi, err = file.Stat(); err == nil {
			size = fi.Size()
		}
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", 0, fmt.Errorf("write %s: %w", out, err)
	}
	return digest.String(), size, nil
}
