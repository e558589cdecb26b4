package app

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	"github.com/dyno-run/dyno/internal/uuid"
	"github.com/dyno-run/dyno/ledger"
)

// MaxDrains is how many log drains an app may have, as on Heroku.
const MaxDrains = 5

// CheckDrainURL reports whether raw is a drain URL dyno can send to:
// syslog://HOST:PORT or syslog+tls://HOST:PORT (RFC 5424 over TCP), or
// https://HOST[:PORT]/PATH (Logplex's HTTPS batches). http:// is taken
// only for a loopback host: it is for a collector on this machine, and
// sending an app's logs in the clear across a network is refused rather
// than done quietly.
func CheckDrainURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not a drain URL; use syslog://HOST:PORT, syslog+tls://HOST:PORT or https://HOST/PATH", raw)
	}
	switch u.Scheme {
	case "syslog", "syslog+tls":
		if u.Port() == "" || u.Hostname() == "" {
			return nil, fmt.Errorf("%q has no port; a syslog drain needs one: %s://%s:PORT", raw, u.Scheme, u.Hostname())
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("%q has more than a host and port; a syslog drain is %s://HOST:PORT", raw, u.Scheme)
		}
	case "https":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("%q has no host; use https://HOST/PATH", raw)
		}
	case "http":
		if !loopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("%q would send the app's logs unencrypted; use https://%s%s (http:// is taken only for 127.0.0.1, ::1 or localhost)", raw, u.Host, u.EscapedPath())
		}
	default:
		return nil, fmt.Errorf("%q has scheme %q, which is not a drain's; use syslog://HOST:PORT, syslog+tls://HOST:PORT or https://HOST/PATH", raw, u.Scheme)
	}
	if u.Port() != "" {
		if p, err := net.LookupPort("tcp", u.Port()); err != nil || p == 0 {
			return nil, fmt.Errorf("%q has port %q, which is not a port number; use 1 to 65535", raw, u.Port())
		}
	}
	return u, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Drains returns the app's log drains, oldest first.
func (a *App) Drains() ([]ledger.Drain, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	return s.Drains, nil
}

// AddDrain records a new log drain to raw for the app, with a new id and
// token, and returns it. A URL the app drains to already, a sixth drain
// or a URL CheckDrainURL refuses is an error, and nothing is written.
func (a *App) AddDrain(raw, user string) (ledger.Drain, error) {
	if _, err := CheckDrainURL(raw); err != nil {
		return ledger.Drain{}, err
	}
	d := ledger.Drain{ID: uuid.New(), URL: raw, Token: "d." + uuid.New(), Created: time.Now().UTC().Truncate(time.Second)}
	_, err := a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		if slices.ContainsFunc(s.Drains, func(x ledger.Drain) bool { return x.URL == raw }) {
			return nil, fmt.Errorf("Url has already been taken: ⬢ %s drains to %s already; dyno drains lists its drains", a.Name, raw)
		}
		if len(s.Drains) >= MaxDrains {
			return nil, fmt.Errorf("⬢ %s has %d drains, the most an app may have; remove one first (dyno drains:remove URL)", a.Name, len(s.Drains))
		}
		next := append(slices.Clone(s.Drains), d)
		return []ledger.Record{{Type: ledger.TypeDrains, User: user, Drains: next}}, nil
	})
	if err != nil {
		return ledger.Drain{}, err
	}
	return d, nil
}

// RemoveDrain removes the app's drain whose URL or token is which, and
// returns it.
func (a *App) RemoveDrain(which, user string) (ledger.Drain, error) {
	var gone ledger.Drain
	_, err := a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		i := slices.IndexFunc(s.Drains, func(x ledger.Drain) bool { return x.URL == which || x.Token == which })
		if i < 0 {
			return nil, fmt.Errorf("Couldn't find that drain: ⬢ %s has no drain with URL or token %q; dyno drains lists them", a.Name, which)
		}
		gone = s.Drains[i]
		next := slices.Delete(slices.Clone(s.Drains), i, i+1)
		if next == nil {
			next = []ledger.Drain{}
		}
		return []ledger.Record{{Type: ledger.TypeDrains, User: user, Drains: next}}, nil
	})
	if err != nil {
		return ledger.Drain{}, err
	}
	return gone, nil
}
