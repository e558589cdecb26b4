package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/supervisor/export/kubernetes"
)

func newExportKubernetesCommand() *cobra.Command {
	var f exportFlags
	var image, dir string
	cmd := &cobra.Command{
		Use:   "kubernetes",
		Short: "Write a release as Kubernetes manifests",
		Long: `Export kubernetes writes the objects that run one release of an app on a
Kubernetes cluster: a Secret of its config vars, a Job for its release phase,
a Deployment per process type scaled as its formation, and for web a Service
and an Ingress for the app's hostnames. The containers run the image that
dyno export oci makes (APP:vN by default; --image names it as your registry
has it).

Without -o the objects go to stdout as one YAML stream, for kubectl apply -f -.
With -o DIR each is a file, numbered in the order to apply them; files an
earlier export of the app wrote there that this release no longer has are
removed. Apply the release Job first and wait for it, as Heroku's release
phase (Helm and Argo CD do this by its hook annotations):

  kubectl apply -f DIR/00-secret-APP-config.yaml -f DIR/10-job-APP-release-vN.yaml
  kubectl wait --for=condition=complete --timeout=1h job/APP-release-vN
  kubectl apply -f DIR`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPlan(f)
			if err != nil {
				return err
			}
			objs, err := kubernetes.Manifests(p, kubernetes.Options{Image: image})
			if err != nil {
				return err
			}
			if dir == "" {
				return kubernetes.WriteStream(cmd.OutOrStdout(), objs)
			}
			return writeManifests(cmd, dir, p.App, objs)
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&image, "image", "", "the image reference the containers run (default APP:vN, as dyno export oci tags it)")
	cmd.Flags().StringVarP(&dir, "output", "o", "", "write one file per object into `DIR` (made if missing) instead of stdout")
	return cmd
}

// writeManifests writes objs into dir, one file each, atomically, and
// removes app's files of an earlier export that objs no longer have.
func writeManifests(cmd *cobra.Command, dir, app string, objs []kubernetes.Object) error {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("-o %s is not a folder; give a folder for the manifests (it is made if missing)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return outputError(dir, err)
	}
	names := kubernetes.FileNames(objs)
	for i, obj := range objs {
		y, err := kubernetes.Marshal(obj)
		if err != nil {
			return err
		}
		// Config vars are secrets: only their owner reads them here too.
		perm := fs.FileMode(0o644)
		if kubernetes.IsSecret(obj) {
			perm = 0o600
		}
		path := filepath.Join(dir, names[i])
		if err := fsutil.WriteFile(path, y, perm); err != nil {
			return outputError(dir, err)
		}
		fmt.Fprintln(cmd.OutOrStdout(), path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return outputError(dir, err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !e.Type().IsRegular() || slices.Contains(names, e.Name()) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil || !kubernetes.OwnFile(app, e.Name(), data) {
			continue
		}
		if err := os.Remove(path); err != nil {
			return outputError(dir, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "removed %s, which this release no longer has\n", path)
	}
	return nil
}

// outputError is err, a failure to write under -o dir, as one line
// naming the fix.
func outputError(dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("-o %s: %w; give a folder you can write, or change its permissions", dir, err)
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("-o %s: %w; give a folder for the manifests (it is made if missing)", dir, err)
	}
	return fmt.Errorf("-o %s: %w", dir, err)
}
