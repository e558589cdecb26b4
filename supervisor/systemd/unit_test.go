package systemd

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// settings returns the lines of a unit file that are neither comments
// nor blank: what systemd reads.
func settings(unit string) []string {
	var out []string
	for line := range strings.Lines(unit) {
		line = strings.TrimRight(line, "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out
}

func checkSettings(t *testing.T, unit string, want []string) {
	t.Helper()
	got := settings(unit)
	if !slices.Equal(got, want) {
		t.Errorf("unit settings:\n%s\nwant:\n%s\nunit:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), unit)
	}
}

func TestUnitSystem(t *testing.T) {
	unit := Unit(UnitOptions{
		Binary: "/usr/local/bin/dyno",
		Home:   "/home/dyno/.local/share/dyno",
		RunAs:  "dyno",
	})
	checkSettings(t, unit, []string{
		"[Unit]",
		"Description=dyno daemon: every app's dynos at their formation",
		"After=network-online.target",
		"Wants=network-online.target",
		"[Service]",
		"Type=notify",
		"NotifyAccess=main",
		"ExecStart=/usr/local/bin/dyno daemon",
		"Environment=DYNO_HOME=/home/dyno/.local/share/dyno",
		"User=dyno",
		"Group=dyno",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"Delegate=yes",
		"KillMode=mixed",
		"TimeoutStopSec=75",
		"Restart=always",
		"RestartSec=1",
		"WatchdogSec=30",
		"LimitNOFILE=65536",
		"[Install]",
		"WantedBy=multi-user.target",
	})
	if !strings.Contains(unit, "# Change settings with a drop-in (`systemctl edit dyno`)") {
		t.Errorf("system unit does not point to systemctl edit:\n%s", unit)
	}
}

func TestUnitUser(t *testing.T) {
	unit := Unit(UnitOptions{
		Binary: "/home/ann/bin/dyno",
		Home:   "/home/ann/.local/share/dyno",
		User:   true,
		RunAs:  "dyno", // a user unit runs as its user: ignored
	})
	checkSettings(t, unit, []string{
		"[Unit]",
		"Description=dyno daemon: every app's dynos at their formation",
		"[Service]",
		"Type=notify",
		"NotifyAccess=main",
		"ExecStart=/home/ann/bin/dyno daemon",
		"Environment=DYNO_HOME=/home/ann/.local/share/dyno",
		"Delegate=yes",
		"KillMode=mixed",
		"TimeoutStopSec=75",
		"Restart=always",
		"RestartSec=1",
		"WatchdogSec=30",
		"LimitNOFILE=65536",
		"[Install]",
		"WantedBy=default.target",
	})
	if !strings.Contains(unit, "`systemctl --user edit dyno`") {
		t.Errorf("user unit does not point to systemctl --user edit:\n%s", unit)
	}
}

func TestUnitRootDefaults(t *testing.T) {
	// As root, with dyno's default DYNO_HOME: no User=, no Environment=.
	got := settings(Unit(UnitOptions{Binary: "/usr/local/bin/dyno"}))
	for _, line := range got {
		for _, key := range []string{"User=", "Group=", "Environment="} {
			if strings.HasPrefix(line, key) {
				t.Errorf("unexpected %q", line)
			}
		}
	}
	if !slices.Contains(got, "ExecStart=/usr/local/bin/dyno daemon") {
		t.Errorf("no ExecStart in %q", got)
	}
}

func TestUnitQuoting(t *testing.T) {
	unit := Unit(UnitOptions{
		Binary: "/opt/my apps/dyno%v1$x",
		Home:   `/srv/a "b"\c%h` + "\n",
		RunAs:  "dyno%i",
	})
	for _, want := range []string{
		`ExecStart="/opt/my apps/dyno%%v1$x" daemon`,
		`Environment="DYNO_HOME=/srv/a \"b\"\\c%%h\n"`,
		"User=dyno%%i",
	} {
		if !slices.Contains(settings(unit), want) {
			t.Errorf("no line %s in\n%s", want, unit)
		}
	}
	for in, want := range map[string]string{
		"/usr/local/bin/dyno": "/usr/local/bin/dyno",
		"":                    `""`,
		"a\tb":                `"a\tb"`,
		"it's":                `"it's"`,
		"\x01\x7f":            `"\x01\x7f"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestUnitPath(t *testing.T) {
	for _, tc := range []struct {
		name    string
		user    bool
		environ []string
		want    string
	}{
		{"system", false, []string{"XDG_CONFIG_HOME=/cfg"}, "/etc/systemd/system/dyno.service"},
		{"user", true, nil, "/home/ann/.config/systemd/user/dyno.service"},
		{"user XDG", true, []string{"XDG_CONFIG_HOME=/cfg"}, "/cfg/systemd/user/dyno.service"},
		{"user relative XDG", true, []string{"XDG_CONFIG_HOME=cfg"}, "/home/ann/.config/systemd/user/dyno.service"},
		{"user empty XDG", true, []string{"XDG_CONFIG_HOME="}, "/home/ann/.config/systemd/user/dyno.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UnitPath(tc.user, tc.environ, "/home/ann"); got != tc.want {
				t.Errorf("UnitPath = %s, want %s", got, tc.want)
			}
		})
	}
}

// checkInstalled checks that path holds unit with mode 0644, and that its
// directory holds nothing else: no temporary file was left.
func checkInstalled(t *testing.T, path, unit string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != unit {
		t.Errorf("%s holds\n%s\nwant\n%s", path, b, unit)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o644 {
		t.Errorf("mode %v, want -rw-r--r--", fi.Mode())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only %s", names, filepath.Base(path))
	}
}

func TestInstallUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config", "systemd", "user", "dyno.service")
	unit := Unit(UnitOptions{Binary: "/usr/local/bin/dyno", User: true})
	linger := "loginctl enable-linger " + currentUser()

	next, err := Install(path, unit, false)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, path, unit)
	want := []string{linger, "systemctl --user daemon-reload", "systemctl --user enable --now dyno"}
	if !slices.Equal(next, want) {
		t.Errorf("next = %q, want %q", next, want)
	}

	// The same unit again is fine, and changes nothing.
	next, err = Install(path, unit, false)
	if err != nil {
		t.Fatalf("identical reinstall: %v", err)
	}
	if !slices.Equal(next, want) {
		t.Errorf("next = %q, want %q", next, want)
	}
	checkInstalled(t, path, unit)

	// A different one is refused, and the old one stays.
	other := Unit(UnitOptions{Binary: "/opt/dyno/bin/dyno", User: true})
	if _, err := Install(path, other, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("different unit without force: err = %v, want fs.ErrExist", err)
	}
	checkInstalled(t, path, unit)

	// Unless forced: then a running daemon must pick it up.
	next, err = Install(path, other, true)
	if err != nil {
		t.Fatalf("forced: %v", err)
	}
	checkInstalled(t, path, other)
	want = []string{linger, "systemctl --user daemon-reload", "systemctl --user try-restart dyno", "systemctl --user enable --now dyno"}
	if !slices.Equal(next, want) {
		t.Errorf("next = %q, want %q", next, want)
	}
}

func TestInstallSystem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "systemd", "system", "dyno.service")
	unit := Unit(UnitOptions{Binary: "/usr/local/bin/dyno", RunAs: "dyno"})
	// A strict umask must not take away the mode asked for: systemctl
	// cat and people read units as themselves.
	defer syscall.Umask(syscall.Umask(0o077))
	next, err := Install(path, unit, false)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, path, unit)
	want := []string{"systemctl daemon-reload", "systemctl enable --now dyno"}
	if !slices.Equal(next, want) {
		t.Errorf("next = %q, want %q", next, want)
	}
}

func TestInstallFails(t *testing.T) {
	dir := t.TempDir()
	// The unit's directory cannot be made: a file is in the way.
	if err := os.WriteFile(filepath.Join(dir, "systemd"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "systemd", "user", "dyno.service")
	if _, err := Install(path, "[Unit]\n", false); err == nil {
		t.Fatal("no error")
	} else if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	// The unit's path is a directory: the rename fails, and the
	// temporary file goes.
	path = filepath.Join(dir, "system", "dyno.service")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(path, "[Unit]\n", true); err == nil {
		t.Fatal("no error installing over a directory")
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("%d entries left in %s, want the directory alone", len(entries), filepath.Dir(path))
	}
}

// TestUnitVerify has systemd itself check the units: unknown or
// misspelt settings, values it cannot parse, an ExecStart= it cannot
// find (which also checks the quoting of an odd binary path).
func TestUnitVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed, so systemd cannot check the units")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	binDir := filepath.Join(dir, "odd bin%")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(binDir, "dyno$1")
	if err := os.Symlink(self, binary); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		opts UnitOptions
		args []string
	}{
		{"system", UnitOptions{Binary: binary, Home: "/home/dyno/.local/share/dyno", RunAs: "dyno"}, []string{"verify"}},
		{"system as root", UnitOptions{Binary: binary}, []string{"verify"}},
		{"user", UnitOptions{Binary: binary, Home: filepath.Join(dir, "state dir"), User: true}, []string{"--user", "verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unitDir := t.TempDir()
			path := filepath.Join(unitDir, "dyno.service")
			if err := os.WriteFile(path, []byte(Unit(tc.opts)), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(analyze, append(tc.args, path)...)
			// A user manager needs a runtime directory; the test's
			// own keeps it from touching the real one.
			runtime := t.TempDir()
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=")
			out, err := cmd.CombinedOutput()
			if strings.Contains(string(out), "Failed to initialize manager") {
				t.Skipf("systemd-analyze cannot run here: %s", out)
			}
			if err != nil {
				t.Fatalf("systemd-analyze %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
			}
			// verify also reports problems of the host's units; only
			// lines about this one count.
			for line := range strings.Lines(string(out)) {
				if strings.Contains(line, "dyno.service") || strings.Contains(line, "dyno$1") {
					t.Errorf("systemd-analyze: %s", strings.TrimSpace(line))
				}
			}
		})
	}
}
