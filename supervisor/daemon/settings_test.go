package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if s, err := LoadSettings(filepath.Join(dir, "missing.toml")); err != nil || s != DefaultSettings() {
		t.Fatalf("missing file: %+v, %v", s, err)
	}
	path := filepath.Join(dir, "dyno.toml")
	os.WriteFile(path, []byte("[sizes.tiny]\nmemory = \"64MB\"\n\n[daemon]\nrestart_cap = \"5m\"\ncycle = \"off\"\n"), 0o644)
	s, err := LoadSettings(path)
	if err != nil || s.RestartCap != 5*time.Minute || s.Cycle >= 0 || s.StopTimeout != 30*time.Second {
		t.Fatalf("%+v, %v", s, err)
	}
	for content, want := range map[string]string{
		"[daemon]\nrestart_kap = \"5m\"\n":  "daemon.restart_kap is not a setting",
		"[daemon]\ncycle = \"daily\"\n":     `daemon.cycle: "daily" is not a duration`,
		"[daemon]\nstop_timeout = \"0s\"\n": "daemon.stop_timeout",
	} {
		os.WriteFile(path, []byte(content), 0o644)
		if _, err := LoadSettings(path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: %v, want %q naming the file", content, err, want)
		}
	}
}

func TestSocketPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "/h/dyno.sock"},
		{[]string{"XDG_RUNTIME_DIR=/run/user/1000"}, "/run/user/1000/dyno/dyno.sock"},
		{[]string{"XDG_RUNTIME_DIR=/run/user/1000", "DYNO_SOCKET=/x.sock"}, "/x.sock"},
	} {
		if got := SocketPath("/h", tc.env); got != tc.want {
			t.Errorf("SocketPath(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
