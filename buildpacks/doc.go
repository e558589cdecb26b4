// Package buildpacks builds an app's source with classic Heroku
// buildpacks, as Heroku's slug compiler does: it prepares the source (the
// committed tree, less what .slugignore names), fetches each buildpack
// into a private copy, and runs their bin/detect, bin/compile and
// bin/release in order over one build directory, sourcing each
// buildpack's export file before the next one runs.
//
// Every buildpack command runs through an Executor, the seam where dyno
// plugs in a sandbox; PlainExecutor runs them as ordinary subprocesses.
package buildpacks
