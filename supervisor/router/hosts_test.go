package router

import (
	"strings"
	"testing"
)

func hostsFor(t *testing.T) *Hosts {
	t.Helper()
	h, err := NewHosts("localhost")
	if err != nil {
		t.Fatal(err)
	}
	h.AddApp("node-hello")
	h.AddApp("shop")
	for _, d := range []struct{ app, host string }{
		{"shop", "www.example.com"},
		{"shop", "*.example.com"},
		{"node-hello", "api.example.com"},
	} {
		if err := h.AddDomain(d.app, d.host); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func TestHostsLookup(t *testing.T) {
	t.Parallel()
	h := hostsFor(t)
	for host, want := range map[string]string{
		"node-hello.localhost":      "node-hello",
		"node-hello.localhost:8080": "node-hello",
		"Node-Hello.LOCALHOST.":     "node-hello",
		"shop.localhost":            "shop",
		"www.example.com":           "shop",
		"api.example.com":           "node-hello", // exact wins over *.example.com
		"blog.example.com:443":      "shop",
		"a.b.example.com":           "", // a wildcard covers one label
		"example.com":               "", // and not the name itself
		"nope.localhost":            "", // no such app
		"localhost":                 "", // no app name
		"[::1]:8080":                "", // an address, not a name
		"":                          "",
		"node-hello.localhost.evil": "",
	} {
		got, ok := h.Lookup(host)
		if got != want || ok != (want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}

func TestHostsAddDomainRefuses(t *testing.T) {
	t.Parallel()
	h := hostsFor(t)
	for _, tc := range []struct{ app, host, want string }{
		{"node-hello", "www.example.com", "already added to ⬢ shop"},
		{"node-hello", "*.EXAMPLE.com", "already added to ⬢ shop"},
		{"node-hello", "shop.localhost", "default hostname of ⬢ shop"},
		{"shop", "not a host", "is not a domain"},
		{"shop", "*.com", "is not a domain"},
		{"shop", "-bad.example.com", "is not a domain"},
		{"shop", "a..b", "is not a domain"},
		{"shop", strings.Repeat("a", 64) + ".com", "is not a domain"},
	} {
		err := h.AddDomain(tc.app, tc.host)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddDomain(%s, %q) = %v; want %q", tc.app, tc.host, err, tc.want)
		}
	}
	// The app that holds a domain may add it again.
	if err := h.AddDomain("shop", "www.example.com"); err != nil {
		t.Errorf("adding shop's own domain again: %v", err)
	}
	if _, err := NewHosts("bad domain"); err == nil {
		t.Error("NewHosts took a domain with a space")
	}
}

func TestHostsLookupAllocatesNothing(t *testing.T) {
	h := hostsFor(t)
	allocs := testing.AllocsPerRun(100, func() {
		h.Lookup("blog.example.com:8080")
		h.Lookup("node-hello.localhost:8080")
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times", allocs)
	}
}
