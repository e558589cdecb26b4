package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/supervisor/router"
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
//
//	[sleep]
//	after = "30m"          # an app on eco dynos sleeps after this long without a request
//
// the router's in its [router] table (RouterSettings), and the API's
// TCP listener in its [api] table (APISettings).
type Settings struct {
	LogKeep     int64
	RestartCap  time.Duration
	Cycle       time.Duration // negative: off
	CycleJitter time.Duration
	StopTimeout time.Duration
	BootTimeout time.Duration
	// SleepAfter is how long an app whose web dynos are eco goes
	// without a request before its dynos sleep, as Heroku's eco dynos
	// do after 30 minutes.
	SleepAfter time.Duration
	Router     RouterSettings
	API        APISettings
}

// RouterSettings are dyno.toml's [router] table:
//
//	[router]
//	listen = "127.0.0.1:8080"  # HTTP; ":80" on a server; "off": no router
//	tls_listen = ""            # HTTPS, e.g. ":443"; "" (the default): none
//	domain = "localhost"       # every app answers as APP.DOMAIN
type RouterSettings struct {
	// Listen is the HTTP listener's address, host:port, or RouterOff.
	Listen string
	// TLSListen is the HTTPS listener's address; "" for none.
	TLSListen string
	// Domain is the default hostnames' domain, a lower-case hostname.
	Domain string
}

// APISettings are dyno.toml's [api] table: the API over TCP, with TLS
// and a token, beside the unix socket (which needs neither):
//
//	[api]
//	listen = "127.0.0.1:5055"          # "" (the default): no TCP listener
//	public = false                     # true: listen may be other than loopback
//	hostnames = ["dyno.example.org"]   # more names for the server certificate
type APISettings struct {
	// Listen is the TCP listener's address, host:port; "" for none.
	Listen string
	// Public lets Listen's host be other than loopback.
	Public bool
	// Hostnames are names the server certificate is for, beside
	// 127.0.0.1, ::1, localhost and Listen's host.
	Hostnames []string
}

// RouterOff is RouterSettings.Listen when [router] listen = "off": the
// daemon runs no router.
const RouterOff = "off"

// DefaultRouterSettings is a router on loopback, port 8080, whose
// default hostnames (APP.localhost) resolve with no DNS: curl and
// browsers take every *.localhost name for loopback.
func DefaultRouterSettings() RouterSettings {
	return RouterSettings{Listen: "127.0.0.1:8080", Domain: "localhost"}
}

// Host is app's default hostname, APP.DOMAIN.
func (r RouterSettings) Host(app string) string { return app + "." + r.Domain }

// URL is app's web URL through the router, "http://APP.DOMAIN:PORT/",
// without the port when it is 80; "" when the router is off.
func (r RouterSettings) URL(app string) string {
	if r.Listen == RouterOff || r.Listen == "" {
		return ""
	}
	host := r.Host(app)
	if _, port, err := net.SplitHostPort(r.Listen); err == nil && port != "80" {
		host = net.JoinHostPort(host, port)
	}
	return "http://" + host + "/"
}

// DefaultSettings are Heroku's numbers.
func DefaultSettings() Settings {
	return Settings{RestartCap: 20 * time.Minute, Cycle: 24 * time.Hour, CycleJitter: 216 * time.Minute,
		StopTimeout: 30 * time.Second, BootTimeout: 60 * time.Second, LogKeep: 100 << 20,
		SleepAfter: 30 * time.Minute, Router: DefaultRouterSettings()}
}

// LoadSettings reads the [daemon], [sleep], [router] and [api] tables of dyno.toml at
// path; a missing file or table gives the defaults. An unknown key or a
// bad value is an error naming the file, the key and the fix.
func LoadSettings(path string) (Settings, error) {
	s := DefaultSettings()
	var doc struct {
		Daemon map[string]string `toml:"daemon"`
		Sleep  map[string]string `toml:"sleep"`
		Router map[string]any    `toml:"router"`
		API    map[string]any    `toml:"api"`
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
	for k, v := range doc.Sleep {
		if k != "after" {
			return s, fmt.Errorf("%s: sleep.%s is not a setting; use after", path, k)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("%s: sleep.after: %q is not a duration; write it like \"30m\"", path, v)
		}
		s.SleepAfter = d
	}
	r, err := routerSettings(path, doc.Router)
	if err != nil {
		return s, err
	}
	s.Router = r
	if s.API, err = apiSettings(path, doc.API); err != nil {
		return s, err
	}
	for _, l := range []string{s.Router.Listen, s.Router.TLSListen} {
		if s.API.Listen != "" && s.API.Listen == l {
			return s, fmt.Errorf("%s: api.listen: %q is the router's address too; give the API a port of its own, like \"127.0.0.1:5055\"", path, l)
		}
	}
	return s, nil
}

// apiSettings reads the [api] table of the dyno.toml at path.
func apiSettings(path string, table map[string]any) (APISettings, error) {
	var a APISettings
	for _, k := range slices.Sorted(maps.Keys(table)) {
		switch k {
		case "listen":
			v, ok := table[k].(string)
			if !ok {
				return a, fmt.Errorf("%s: api.listen: %v is not a string; write it in quotes, like listen = \"127.0.0.1:5055\"", path, table[k])
			}
			if v == "" {
				continue
			}
			if err := checkListen(v); err != nil {
				return a, fmt.Errorf("%s: api.listen: %q %v; write it like \"127.0.0.1:5055\", or \"\" for no TCP listener", path, v, err)
			}
			a.Listen = v
		case "public":
			v, ok := table[k].(bool)
			if !ok {
				return a, fmt.Errorf("%s: api.public: %v is not true or false; write it without quotes, like public = true", path, table[k])
			}
			a.Public = v
		case "hostnames":
			list, ok := table[k].([]any)
			if !ok {
				return a, fmt.Errorf("%s: api.hostnames: %v is not a list; write it like hostnames = [\"dyno.example.org\"]", path, table[k])
			}
			for _, item := range list {
				v, ok := item.(string)
				if !ok {
					return a, fmt.Errorf("%s: api.hostnames: %v is not a string; write it in quotes, like hostnames = [\"dyno.example.org\"]", path, item)
				}
				h := strings.TrimSuffix(strings.ToLower(v), ".")
				if _, err := netip.ParseAddr(h); err != nil && !router.ValidHostname(h) {
					return a, fmt.Errorf("%s: api.hostnames: %q is not a hostname or IP address; write one like \"dyno.example.org\"", path, v)
				}
				a.Hostnames = append(a.Hostnames, h)
			}
		default:
			return a, fmt.Errorf("%s: api.%s is not a setting; use listen, public or hostnames", path, k)
		}
	}
	if a.Listen != "" && !a.Public && !loopback(a.Listen) {
		return a, fmt.Errorf("%s: api.listen: %q is not a loopback address, so other machines could reach the API; listen on \"127.0.0.1:PORT\" and reach it through ssh -L, or set public = true in [api]", path, a.Listen)
	}
	return a, nil
}

// loopback reports whether a checked listen address's host is loopback:
// localhost, 127.0.0.0/8 or ::1. "" and unspecified addresses are every
// address, not loopback.
func loopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// routerSettings reads the [router] table of the dyno.toml at path.
func routerSettings(path string, table map[string]any) (RouterSettings, error) {
	r := DefaultRouterSettings()
	// In a fixed order, so that of two bad keys the same one is named
	// every time.
	for _, k := range slices.Sorted(maps.Keys(table)) {
		v, ok := table[k].(string)
		if !ok {
			switch k {
			case "listen", "tls_listen", "domain":
				return r, fmt.Errorf("%s: router.%s: %v is not a string; write it in quotes, like %s = %q", path, k, table[k], k, routerExample(k))
			}
		}
		switch k {
		case "listen":
			if strings.EqualFold(v, RouterOff) {
				r.Listen = RouterOff
				continue
			}
			if err := checkListen(v); err != nil {
				return r, fmt.Errorf("%s: router.listen: %q %v; write it like \"127.0.0.1:8080\" or \":80\", or \"off\" for no router", path, v, err)
			}
			r.Listen = v
		case "tls_listen":
			if v == "" || strings.EqualFold(v, RouterOff) {
				r.TLSListen = ""
				continue
			}
			if err := checkListen(v); err != nil {
				return r, fmt.Errorf("%s: router.tls_listen: %q %v; write it like \":443\", or \"\" for no HTTPS", path, v, err)
			}
			r.TLSListen = v
		case "domain":
			d := strings.TrimSuffix(strings.ToLower(v), ".")
			if !router.ValidHostname(d) {
				return r, fmt.Errorf("%s: router.domain: %q is not a hostname; write one like \"localhost\" or \"apps.example.com\"", path, v)
			}
			r.Domain = d
		default:
			return r, fmt.Errorf("%s: router.%s is not a setting; use listen, tls_listen or domain", path, k)
		}
	}
	if r.TLSListen != "" && r.TLSListen == r.Listen {
		return r, fmt.Errorf("%s: router.tls_listen: %q is router.listen's address too; give HTTPS a port of its own, like \":443\"", path, r.TLSListen)
	}
	return r, nil
}

// routerExample is an example value of a [router] key, for errors.
func routerExample(key string) string {
	switch key {
	case "listen":
		return "127.0.0.1:8080"
	case "tls_listen":
		return ":443"
	}
	return "localhost"
}

// checkListen checks a listen address: host:port, the host empty (every
// address), an IP address or localhost, the port 1 to 65535. The error
// completes a sentence that starts with the address.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("has no port from 1 to 65535")
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return errors.New("has a host that is not an IP address")
		}
	}
	return nil
}
