// Package logstore keeps the log lines of an app, the part of Heroku's
// Logplex that holds an app's history and feeds its live tails.
//
// Lines arrive in Logplex's format, whole lines only, usually from a
// logmux.Mux:
//
//	2026-11-26T10:00:00.123456+00:00 app[web.1]: text
//
// A [Store] appends them to files under a directory, current.log and
// numbered older files it rotates by size, and deletes the oldest files
// beyond what its [Options] keep. Other processes add lines with [Append]
// and read them back with [Read] whether or not a Store is open: every
// write is a single write(2) to a file opened with O_APPEND, so lines from
// different processes never mix inside a line, and rotation renames files
// rather than copying them, so a writer that opened the old file still
// writes somewhere Read looks.
//
// Tails read the files too: [Follow] returns the last lines and a
// [Cursor] at exactly where they end, whose Next returns the lines stored
// after them across rotations, whichever process wrote them, with or
// without a Store open. A [Hub] hands lines to live subscribers as a
// Store's writer writes them; writers never wait for a subscriber: one
// that falls behind loses its oldest lines and is told so with Logplex's
// L11 line once it reads again.
package logstore
