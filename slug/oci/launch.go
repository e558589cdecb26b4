package oci

import (
	"archive/tar"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dyno-run/dyno/isolate"
)

// launchPath is the image's entrypoint.
const launchPath = "/dyno/launch"

// shellQuote quotes s for bash as one word.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// launchLayer is the layer of /dyno/launch.
func launchLayer(im *Image) (blob, error) {
	profile := isolate.Profile + "\n"
	var arms strings.Builder
	for _, t := range slices.Sorted(maps.Keys(im.ProcessTypes)) {
		command := im.ProcessTypes[t]
		// With arguments, the type's command with them appended, as
		// dyno run does (release.Command); without, the command as a
		// dyno runs it.
		whole := isolate.ProfileArgv(command)[2]
		fmt.Fprintf(&arms, "%s)\n\tif [ $# -gt 1 ]; then shift; exec /bin/bash -c %s\"$*\"; fi\n\texec /bin/bash -c %s;;\n",
			shellQuote(t), shellQuote(profile+command+" "), shellQuote(whole))
	}
	script := fmt.Sprintf(`#!/bin/bash
# %s: runs a process type the way a dyno does, or a one-off command.
# Written by dyno export oci.
export HOME=/app
export PORT="${PORT:-%d}"
cd /app || exit 1
[ $# -gt 0 ] || set -- %s
case "$1" in
%sesac
# No process type: a one-off, as heroku run takes it. One argument is a
# command line; several are the words of one command.
if [ $# -eq 1 ]; then
	exec /bin/bash -c %s"$1"
fi
exec /bin/bash -c %s'"$@"' bash "$@"
`, im.Ref(), Port, shellQuote(defaultType(im.ProcessTypes)), arms.String(), shellQuote(profile), shellQuote(profile))
	return writeLayerBytes(im.Work+"/launch-layer.tar.gz", launchPath[1:], []byte(script))
}

// writeLayerBytes is a layer of one executable file at name, and its
// folder, owned by root: the image's user may run it, not change it.
func writeLayerBytes(path, name string, content []byte) (blob, error) {
	return writeLayer(path, func(tw *tar.Writer) error {
		dir := name[:strings.LastIndexByte(name, '/')+1]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	})
}
