// Package uuid makes random (version 4) UUIDs, RFC 9562, in their
// 36-character text form: the ids of accounts, drains, requests and
// dyno processes.
package uuid

import (
	"encoding/binary"
	"math/rand/v2"
)

// New returns a new random version 4 UUID.
func New() string {
	var b [36]byte
	return string(Append(b[:0]))
}

// Append appends a new random version 4 UUID to dst.
func Append(dst []byte) []byte {
	// The runtime's per-thread ChaCha8, seeded from the kernel: an id
	// must be unique, not secret, and this costs no system call and no
	// lock (the router makes one a request).
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&0x0f])
	}
	return dst
}
