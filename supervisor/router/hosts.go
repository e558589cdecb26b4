package router

import (
	"fmt"
	"strings"
)

// Hosts maps the Host of a request to the app that serves it: each app's
// default hostname, APP.DOMAIN, and its custom domains, exact
// ("www.example.com") or wildcard ("*.example.com", any one label in
// front of example.com, as Heroku's wildcard domains match). A table is
// built whole and never changed, so the engine can read it from any
// number of goroutines while the daemon builds the next one and swaps it
// in (an atomic.Pointer). A lookup allocates nothing.
type Hosts struct {
	domain string            // the default hostnames' domain: "localhost"
	apps   map[string]bool   // every app, for APP.DOMAIN
	exact  map[string]string // custom host -> app
	wild   map[string]string // "example.com" of "*.example.com" -> app
}

// NewHosts starts a table whose apps get APP.domain as their default
// hostname. domain is a hostname itself ("localhost", "apps.example.com").
func NewHosts(domain string) (*Hosts, error) {
	d := strings.ToLower(domain)
	if !validHostname(d) {
		return nil, fmt.Errorf("router domain %q is not a hostname; use one such as localhost or apps.example.com", domain)
	}
	return &Hosts{domain: d, apps: map[string]bool{}, exact: map[string]string{}, wild: map[string]string{}}, nil
}

// AddApp gives app its default hostname, app.DOMAIN.
func (h *Hosts) AddApp(app string) { h.apps[app] = true }

// AddDomain gives app the custom domain host: a hostname, or "*." and a
// hostname. A host another app holds, or an app's default hostname, is
// refused, as Heroku refuses a domain another app has.
func (h *Hosts) AddDomain(app, host string) error {
	host = strings.ToLower(host)
	suffix, wildcard := strings.CutPrefix(host, "*.")
	if !validHostname(suffix) || wildcard && !strings.Contains(suffix, ".") {
		return fmt.Errorf("%q is not a domain; use a hostname such as www.example.com, or *.example.com for every name under it", host)
	}
	table, key := h.exact, host
	if wildcard {
		table, key = h.wild, suffix
	}
	if other, ok := table[key]; ok && other != app {
		return fmt.Errorf("%s is already added to ⬢ %s; remove it there first (dyno domains:remove %s -a %s)", host, other, host, other)
	}
	if !wildcard {
		if owner, ok := h.defaultApp(host); ok && owner != app {
			return fmt.Errorf("%s is the default hostname of ⬢ %s", host, owner)
		}
	}
	table[key] = app
	return nil
}

// Lookup returns the app that serves requests whose Host header is host
// (a port, a trailing dot and upper case are ignored). An exact custom
// domain wins over a default hostname, which wins over a wildcard.
func (h *Hosts) Lookup(host string) (app string, ok bool) {
	host = stripPort(host)
	host = strings.TrimSuffix(host, ".")
	if !isLower(host) {
		host = strings.ToLower(host) // rare: clients send lower case
	}
	if app, ok := h.exact[host]; ok {
		return app, true
	}
	if app, ok := h.defaultApp(host); ok {
		return app, true
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if app, ok := h.wild[host[i+1:]]; ok {
			return app, true
		}
	}
	return "", false
}

// defaultApp is the app whose default hostname is host.
func (h *Hosts) defaultApp(host string) (string, bool) {
	name, ok := strings.CutSuffix(host, "."+h.domain)
	if !ok || !h.apps[name] {
		return "", false
	}
	return name, true
}

// stripPort removes a ":port" from a Host value, and the brackets of an
// IPv6 literal.
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

// validHostname is a lower-case DNS name: dot-separated labels of 1 to
// 63 letters, digits and hyphens, not starting or ending with a hyphen,
// 253 characters at most.
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
