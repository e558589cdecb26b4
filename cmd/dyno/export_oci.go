package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/dyno-run/dyno/internal/fsutil"
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
			digest, size, err := writeArchive(out, im)
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

// writeArchive writes im to out as fsutil.WriteFrom writes a file: whole
// or not at all.
func writeArchive(out string, im *oci.Image) (string, int64, error) {
	pr, pw := io.Pipe()
	var digest v1.Hash
	go func() {
		var err error
		digest, err = oci.Write(pw, im)
		pw.CloseWithError(err)
	}()
	if err := fsutil.WriteFrom(out, pr, 0o644); err != nil {
		pr.CloseWithError(err) // the writer stops at its next write
		return "", 0, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return "", 0, err
	}
	return digest.String(), fi.Size(), nil
}
