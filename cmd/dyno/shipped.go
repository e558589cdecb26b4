package main

import (
	"path/filepath"

	shipped "github.com/dyno-run/dyno/examples/buildpacks"
)

// shippedBuildpacks extracts the buildpacks carried in the binary into
// root, a folder of the build's own scratch (removed with it). names
// maps what a user or a ledger calls each ("heroku/go" and "go") to its
// folder there.
func shippedBuildpacks(root string) (dirs []string, names map[string]string, err error) {
	if err := shipped.Extract(root); err != nil {
		return nil, nil, err
	}
	names = map[string]string{}
	for _, n := range shipped.Names {
		dir := filepath.Join(root, n)
		dirs = append(dirs, dir)
		names["heroku/"+n] = dir
		names[n] = dir
	}
	return dirs, names, nil
}
