package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// dynoHome is $DYNO_HOME, else $XDG_DATA_HOME/dyno, else
// ~/.local/share/dyno (docs/design.md, "State layout").
func dynoHome() (string, error) {
	if h := os.Getenv("DYNO_HOME"); h != "" {
		return filepath.Abs(h)
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "dyno"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/nonexistent" {
		return "", fmt.Errorf("no home for dyno's state: set DYNO_HOME to a directory on a local disk")
	}
	return filepath.Join(home, ".local", "share", "dyno"), nil
}

// localAppName names a project folder's dynos under $DYNO_HOME/dynos:
// the folder's name in Heroku's app-name alphabet.
func localAppName(dir string) string {
	name := strings.ToLower(filepath.Base(dir))
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if s := strings.Trim(string(b), "-"); s != "" {
		return s
	}
	return "app"
}
