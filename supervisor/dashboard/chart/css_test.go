package chart

import (
	"strings"
	"testing"
)

func TestCSS(t *testing.T) {
	css := string(CSS())
	// Every class the package writes.
	for _, class := range []string{
		".chart", ".title", ".tick", ".legend", ".nodata", ".grid", ".axis",
		".line", ".dot", ".area", ".sw", ".limit", ".marker",
		".s0", ".s1", ".s2", ".s3", ".s4", ".s5", ".s6", ".s7",
		".m-release", ".m-restart", ".m-crash", ".m-scale", ".m-r14", ".m-r15", ".m-maintenance",
	} {
		if !strings.Contains(css, class+" ") && !strings.Contains(css, class+"{") && !strings.Contains(css, class+":") {
			t.Errorf("chart.css has no rule for %s", class)
		}
	}
	b := CSS()
	b[0] = 'x'
	if CSS()[0] == 'x' {
		t.Error("CSS returns the package's own copy")
	}
}
