package router

import (
	"strings"
	"testing"
)

func TestCodes(t *testing.T) {
	tests := []struct {
		code   Code
		name   string
		status int
		level  string
		sock   string
		desc   string
	}{
		{H10, "H10", 503, "error", "", "App crashed"},
		{H12, "H12", 503, "error", "", "Request timeout"},
		{H13, "H13", 503, "error", "", "Connection closed without response"},
		{H14, "H14", 503, "error", "", "No web processes running"},
		{H15, "H15", 503, "error", "", "Idle connection"},
		{H18, "H18", 503, "error", "backend", "Server Request Interrupted"},
		{H19, "H19", 503, "error", "", "Backend connection timeout"},
		{H20, "H20", 503, "error", "", "App boot timeout"},
		{H21, "H21", 503, "error", "", "Backend connection refused"},
		{H25, "H25", 502, "error", "", "HTTP Restriction"},
		{H26, "H26", 400, "error", "", "Request Error"},
		{H27, "H27", 499, "warning", "client", "Client Request Interrupted"},
		{H28, "H28", 499, "warning", "", "Client Connection Idle"},
		{H80, "H80", 503, "info", "", "Maintenance mode"},
		{H81, "H81", 503, "info", "", "Blank app"},
		{H99, "H99", 503, "error", "", "Platform error"},
	}
	if len(tests) != int(numCodes)-1 {
		t.Fatalf("the table tests %d codes, the package has %d", len(tests), numCodes-1)
	}
	for _, tt := range tests {
		c := tt.code
		if c.String() != tt.name || c.Status() != tt.status || c.Level() != tt.level || c.Sock() != tt.sock || c.Desc() != tt.desc {
			t.Errorf("%s: got %q %d %q %q %q, want %q %d %q %q %q", tt.name,
				c.String(), c.Status(), c.Level(), c.Sock(), c.Desc(),
				tt.name, tt.status, tt.level, tt.sock, tt.desc)
		}
		page := c.Page()
		for _, want := range []string{"<!DOCTYPE html>", "<title>" + tt.desc + " (" + tt.name + ")</title>", "Its owner", "</html>"} {
			if want == "Its owner" && (c == H26 || c == H27 || c == H28) {
				continue // the client's own failures: nothing for the owner to do
			}
			if !strings.Contains(page, want) {
				t.Errorf("%s page lacks %q:\n%s", tt.name, want, page)
			}
		}
		for _, external := range []string{"src=", "href=", "http://", "https://", "url("} {
			if strings.Contains(page, external) {
				t.Errorf("%s page loads an external asset (%q)", tt.name, external)
			}
		}
	}
	if OK.String() != "" || OK.Page() != "" || OK.Level() != "info" {
		t.Errorf("OK: got %q %q %q, want no name, no page, at=info", OK.String(), OK.Page(), OK.Level())
	}
}
