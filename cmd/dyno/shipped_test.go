package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The binary ships the Go and Node.js buildpacks and nothing meant for
// tests: the fixture buildpack is given by its path.
func TestShippedBuildpacksLeaveTheFixtureOut(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dirs, names, err := shippedBuildpacks(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 || names["heroku/go"] == "" || names["heroku/nodejs"] == "" {
		t.Errorf("shipped %v, names %v; want go and nodejs", dirs, names)
	}
	if _, ok := names["fixture"]; ok {
		t.Errorf("the fixture buildpack is shipped: %v", names)
	}
	if _, err := os.Stat(filepath.Join(root, "fixture")); err == nil {
		t.Errorf("the fixture buildpack was extracted into %s", root)
	}
}
