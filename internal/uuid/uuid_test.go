package uuid

import (
	"regexp"
	"testing"
)

// Version 4, variant 10, lower-case hex, and never the same twice.
func TestNew(t *testing.T) {
	t.Parallel()
	form := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		u := New()
		if !form.MatchString(u) || seen[u] {
			t.Fatalf("%q: not a fresh version 4 UUID", u)
		}
		seen[u] = true
	}
	if b := Append([]byte("id=")); !regexp.MustCompile(`^id=[0-9a-f-]{36}$`).Match(b) {
		t.Errorf("Append: %q", b)
	}
}
