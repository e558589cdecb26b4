package router

import "testing"

func TestValidDomain(t *testing.T) {
	t.Parallel()
	for host, ok := range map[string]bool{
		"www.example.com": true,
		"example.com":     true,
		"localhost":       true,
		"*.example.com":   true,
		"*.a.b.c":         true,
		"*.com":           false, // a wildcard over a whole top-level name
		"*":               false,
		"**.example.com":  false,
		"www.*.com":       false,
		"WWW.example.com": false, // callers lower the case
		"-a.example.com":  false,
		"a..b":            false,
		"":                false,
		"a_b.example.com": false,
		"example.com.":    false,
	} {
		if err := ValidDomain(host); (err == nil) != ok {
			t.Errorf("ValidDomain(%q) = %v, want ok %v", host, err, ok)
		}
		// Hosts.AddDomain applies the same rule.
		h, _ := NewHosts("localhost")
		if err := h.AddDomain("app", host); (err == nil) != ok && host != "WWW.example.com" {
			t.Errorf("AddDomain(%q) = %v, want ok %v", host, err, ok)
		}
	}
}
