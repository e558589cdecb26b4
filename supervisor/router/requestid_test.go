package router

import (
	"regexp"
	"strings"
	"testing"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestID(t *testing.T) {
	tests := []struct {
		client string
		kept   bool
	}{
		{"", false},
		{strings.Repeat("a", 19), false},
		{strings.Repeat("a", 20), true},
		{strings.Repeat("Z", 200), true},
		{strings.Repeat("Z", 201), false},
		{"abcDEF0123456789+/=-", true},
		{"f81d4fae-7dec-11d0-a765-00a0c91e6bf6", true},
		{"abcdefghijklmnopqrs_", false},    // underscore
		{"abcdefghij klmnopqrst", false},   // space
		{"abcdefghijklmnopqrst\n", false},  // newline
		{"abcdefghijklmnopqrsté", false},   // non-ASCII
		{"abcdefghijklmnopqrst\"x", false}, // quote
	}
	for _, tt := range tests {
		got := RequestID(tt.client)
		if tt.kept && got != tt.client {
			t.Errorf("RequestID(%q) = %q, want the client's kept", tt.client, got)
		}
		if !tt.kept && !uuidV4.MatchString(got) {
			t.Errorf("RequestID(%q) = %q, want a new UUID v4", tt.client, got)
		}
	}
}

func TestRequestIDsDiffer(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := RequestID("")
		if seen[id] {
			t.Fatalf("RequestID gave %q twice", id)
		}
		seen[id] = true
	}
}

var validID = regexp.MustCompile(`^[A-Za-z0-9+/=-]{20,200}$`)

// FuzzRequestID checks that any client value is kept exactly when the
// regular expression of Heroku's rule matches it, and that the result is
// always an id a dyno may be given.
func FuzzRequestID(f *testing.F) {
	f.Add("")
	f.Add(strings.Repeat("a", 20))
	f.Add("abcdefghij klmnopqrst")
	f.Fuzz(func(t *testing.T, client string) {
		got := RequestID(client)
		if validID.MatchString(client) {
			if got != client {
				t.Fatalf("RequestID(%q) = %q, want it kept", client, got)
			}
			return
		}
		if !uuidV4.MatchString(got) {
			t.Fatalf("RequestID(%q) = %q, want a new UUID v4", client, got)
		}
	})
}
