package main

import (
	"os"
	"path/filepath"

	shipped "github.com/dyno-run/dyno/examples/buildpacks"
)

// shippedBuildpacks extracts the buildpacks carried in the binary into a
// temp dir for one build. names maps what a user or a ledger calls each
// ("heroku/go" and "go") to its folder there; cleanup removes the dir.
func shippedBuildpacks() (dirs []string, names map[string]string, cleanup func(), err error) {
	root, err := os.MkdirTemp("", "dyno-buildpacks-")
	if err != nil {
		return nil, nil, nil, err
	}
	cleanup = func() { os.RemoveAll(root) }
	if err := shipped.Extract(root); err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	names = map[string]string{}
	for _, n := range shipped.Names {
		dir := filepath.Join(root, n)
		dirs = append(dirs, dir)
		names["heroku/"+n] = dir
		names[n] = dir
	}
	names["fixture"] = filepath.Join(root, "fixture")
	return dirs, names, cleanup, nil
}
