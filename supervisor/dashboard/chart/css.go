package chart

import "embed"

//go:embed chart.css
var files embed.FS

// CSS returns a stylesheet that gives every class a chart uses a look on
// a light background, for the page to serve or to include in its own.
// The caller owns the slice.
func CSS() []byte {
	b, err := files.ReadFile("chart.css")
	if err != nil {
		panic(err) // embedded: it cannot be missing
	}
	return b
}
