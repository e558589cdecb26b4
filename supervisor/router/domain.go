package router

import (
	"fmt"
	"strings"
)

// ValidDomain checks a custom domain by the rule Hosts.AddDomain applies:
// a lower-case hostname ("www.example.com"), or "*." and a hostname with
// at least one dot ("*.example.com"), so that a wildcard never covers a
// whole top-level name. Callers lower the case first, as AddDomain does.
func ValidDomain(host string) error {
	suffix, wildcard := strings.CutPrefix(host, "*.")
	if !validHostname(suffix) || wildcard && !strings.Contains(suffix, ".") {
		return fmt.Errorf("%q is not a domain; use a hostname such as www.example.com, or *.example.com for every name under it", host)
	}
	return nil
}

// ValidHostname reports whether s is a lower-case DNS name, as the
// router's domain and every default hostname must be.
func ValidHostname(s string) bool { return validHostname(s) }
