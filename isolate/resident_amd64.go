package isolate

import _ "embed"

// residentInit is the resident init built from resident/resident.c by
// `make resident` (handover.go).
//
//go:embed resident/resident-amd64
var residentInit []byte
