package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/dyno-run/dyno/isolate/cgroup"
)

// Settings are the daemon's knobs in dyno.toml's [daemon] table:
//
//	[daemon]
//	restart_cap = "20m"    # longest wait before restarting a crashed dyno
//	cycle = "24h"          # daily cycling; "off" disables it
//	cycle_jitter = "216m"  # plus up to this much, per dyno
//	stop_timeout = "30s"   # SIGTERM to SIGKILL
//	boot_timeout = "60s"   # a web dyno must listen on $PORT within it (R10)
//	log_keep = "100MB"     # logs kept per app (never fewer than 1,500 lines)
type Settings struct {
	LogKeep     int64
	RestartCap  time.Duration
	Cycle       time.Duration // negative: off
	CycleJitter time.Duration
	StopTimeout time.Duration
	BootTimeout time.Duration
}

// DefaultSettings are Heroku's numbers.
func DefaultSettings() Settings {
	return Settings{RestartCap: 20 * time.Minute, Cycle: 24 * time.Hour, CycleJitter: 216 * time.Minute,
		StopTimeout: 30 * time.Second, BootTimeout: 60 * time.Second, LogKeep: 100 << 20}
}

// LoadSettings reads the [daemon] table of dyno.toml at path; a missing
// file or table gives the defaults. An unknown key or a bad duration is an
// error naming the file, the key and the fix.
func LoadSettings(path string) (Settings, error) {
	s := DefaultSettings()
	var doc struct {
		Daemon map[string]string `toml:"daemon"`
	}
	_, err := toml.DecodeFile(path, &doc)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	for k, v := range doc.Daemon {
		var target *time.Duration
		switch k {
		case "restart_cap":
			target = &s.RestartCap
		case "cycle":
			if strings.EqualFold(v, "off") {
				s.Cycle = -1
				continue
			}
			target = &s.Cycle
		case "cycle_jitter":
			target = &s.CycleJitter
		case "stop_timeout":
			target = &s.StopTimeout
		case "boot_timeout":
			target = &s.BootTimeout
		case "log_keep":
			n, err := cgroup.ParseBytes(v)
			if err != nil || n <= 0 {
				return s, fmt.Errorf("%s: daemon.log_keep: %q is not a size; write it like \"100MB\"", path, v)
			}
			s.LogKeep = n
			continue
		default:
			return s, fmt.Errorf("%s: daemon.%s is not a setting; use restart_cap, cycle, cycle_jitter, stop_timeout, boot_timeout or log_keep", path, k)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 && k != "cycle_jitter" || d < 0 {
			return s, fmt.Errorf("%s: daemon.%s: %q is not a duration; write it like \"20m\" or \"24h\"", path, k, v)
		}
		*target = d
	}
	return s, nil
}
