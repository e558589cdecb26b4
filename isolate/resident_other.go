//go:build !amd64

package isolate

// residentInit is empty: the resident init is written for amd64 alone,
// and elsewhere the Go init stays resident for the dyno's life
// (handover.go).
var residentInit []byte
