// Package logmux multiplexes the output of dyno processes onto one writer,
// the way Foreman and Heroku's Logplex do.
//
// Each dyno gets a [Source]: a pipe whose write end becomes the process's
// stdout and stderr. One goroutine per source reads the pipe in large
// chunks, splits it into lines with a [Splitter], formats every complete
// line of a chunk into a private buffer and hands that buffer to the output
// in a single Write under the [Mux]'s lock, so lines from different dynos
// never tear or interleave. Line bytes pass through unchanged apart from the
// terminating newline; lines longer than [MaxLineBytes] are cut into pieces
// of that size, and a partial line is written once the process has been
// quiet for [Options.FlushDelay]. The dyno manager adds its own lines with
// [Mux.System]. Output is rendered either as Foreman-style terminal lines or
// as Logplex lines with RFC 3339 microsecond timestamps (see [Format]).
// If the output fails, sources keep draining their pipes so that dynos never
// block on a full pipe, and the output is dropped.
package logmux
