package kubernetes

import (
	"fmt"
	"strconv"
	"strings"
)

// quantity writes n bytes (n >= 0) as the API writes a binary quantity
// (resource.NewQuantity(n, resource.BinarySI).String()): from 1024 up,
// with the largest of Ki, Mi, Gi, Ti, Pi, Ei that divides it exactly,
// else as a plain number; below 1024 as a decimal quantity ("1k" for
// 1000), which the API prefers there to avoid rounding.
func quantity(n int64) string {
	if n < 1024 {
		if n == 1000 {
			return "1k"
		}
		return strconv.FormatInt(n, 10)
	}
	for i, s := range []string{"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"} {
		unit := int64(1) << (10 * (6 - i))
		if n%unit == 0 {
			return strconv.FormatInt(n/unit, 10) + s
		}
	}
	return strconv.FormatInt(n, 10)
}

// Name limits of RFC 1123 as Kubernetes applies them
// (k8s.io/apimachinery/pkg/util/validation).
const (
	labelMaxLength     = 63
	subdomainMaxLength = 253
)

// checkLabel says why s is no DNS label Kubernetes takes as a name: at
// most 63 lower-case letters, digits and dashes, a letter or digit at
// each end; "" when it is one.
func checkLabel(s string) string {
	if len(s) > labelMaxLength {
		return fmt.Sprintf("must be no more than %d characters", labelMaxLength)
	}
	if !isLabel(s) {
		return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
	}
	return ""
}

// checkSubdomain says why s is no DNS subdomain (labels joined by dots,
// at most 253 characters), or with wildcard no "*." and one; "" when it
// is one.
func checkSubdomain(s string, wildcard bool) string {
	if len(s) > subdomainMaxLength {
		return fmt.Sprintf("must be no more than %d characters", subdomainMaxLength)
	}
	rest := s
	if wildcard {
		var ok bool
		if rest, ok = strings.CutPrefix(s, "*."); !ok {
			return "a wildcard DNS-1123 subdomain must start with '*.'"
		}
	}
	for l := range strings.SplitSeq(rest, ".") {
		if !isLabel(l) {
			return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
		}
	}
	return ""
}

// isLabel reports whether s is [a-z0-9]([-a-z0-9]*[a-z0-9])?.
func isLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
