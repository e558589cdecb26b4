// Package drain sends an app's log lines to its log drains, as Logplex
// does: to syslog://HOST:PORT and syslog+tls://HOST:PORT as RFC 5424
// frames over TCP with RFC 6587 octet counting, and to https:// URLs as
// POSTed batches of the same frames (Content-Type application/logplex-1
// and the Logplex-* headers).
//
// A drain never slows whoever writes the lines: each has a bounded
// buffer and a goroutine of its own that sends from it. When the buffer
// is full the oldest line is dropped and counted, and the drain later
// receives Logplex's "Error L10 (output buffer overflow): N messages
// dropped since TIME." before the lines that follow. A drain that cannot
// be reached is retried with exponential back-off, its buffer kept.
//
// TLS is always verified, against the system's roots unless Options
// names others (a test's own CA).
package drain
