// Package buildpacks carries the example buildpacks inside the dyno
// binary, so detection can use them wherever dyno is installed.
package buildpacks

import (
	"embed"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

//go:embed all:go all:nodejs
var files embed.FS

// Names are the shipped buildpacks, in detection order.
var Names = []string{"nodejs", "go"}

// Extract writes every shipped buildpack into dir (dir/go, dir/nodejs).
// embed keeps no file modes: scripts under bin/ are made executable, as
// a buildpack's are. The fixture buildpack beside them is a test aid and
// stays out of the binary: tests give its path.
func Extract(dir string) error {
	return fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.Contains(p, "/bin/") || path.Ext(p) == ".sh" {
			mode = 0o755
		}
		return os.WriteFile(target, data, mode)
	})
}
