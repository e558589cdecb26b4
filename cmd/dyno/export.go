package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/export"
)

// addExportCommands adds `dyno export` and its formats: oci
// (export_oci.go), kubernetes (export_kubernetes.go) and systemd
// (export_systemd.go).
func addExportCommands(root *cobra.Command) {
	cmd := &cobra.Command{
		Use:   "export FORMAT",
		Short: "Write a release as an OCI image, Kubernetes manifests or systemd units",
		Long: `Export writes one release of an app (its slug, process types, config vars,
formation and sizes) in a form another engine runs: an OCI image archive
(export oci), Kubernetes manifests (export kubernetes) or systemd units that
run its dynos on this machine (export systemd). Nothing of the app changes.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newExportOCICommand(), newExportKubernetesCommand(), newExportSystemdCommand())
	root.AddCommand(cmd)
}

// exportFlags are the flags every format takes.
type exportFlags struct {
	app     string
	release string // "vN", or "" for the current release
}

func (f *exportFlags) add(cmd *cobra.Command) {
	appFlag(cmd, &f.app)
	cmd.Flags().StringVar(&f.release, "release", "", "the release to export, like v12 (default: the current one)")
}

// loadPlan reads what the formats export: the release asked for (the
// current one by default), the formation, dyno.toml's sizes and daemon
// settings, and the app's hostnames.
func loadPlan(f exportFlags) (*export.Plan, error) {
	a, st, err := openAppState(f.app)
	if err != nil {
		return nil, err
	}
	if f.release == "" && (st.Current == nil || st.Current.Slug == "") {
		return nil, fmt.Errorf("%s has no release with code yet; deploy one first (git push dyno main, or dyno build -a %s)", a.Name, a.Name)
	}
	// The release asked for, checked as dyno run --release checks it.
	rel, err := runRelease(a, st, f.release)
	if err != nil {
		return nil, err
	}
	h := a.Home()
	sizes, err := cgroup.LoadSizes(h.SizesFile())
	if err != nil {
		return nil, err
	}
	settings, err := daemon.LoadSettings(h.SizesFile())
	if err != nil {
		return nil, err
	}
	p := &export.Plan{
		App:         a.Name,
		Release:     *rel,
		Formation:   app.FormationOf(st.Formation, rel),
		Sizes:       sizes,
		StopTimeout: settings.StopTimeout,
		Restart:     export.RestartPolicy{Initial: supervisor.ProductionRestartPolicy.Initial, Max: settings.RestartCap},
		Hosts:       append([]string{settings.Router.Host(a.Name)}, st.Domains...),
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return p, nil
}
