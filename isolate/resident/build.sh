#!/bin/sh
# Builds the resident init (resident.c) into $1, byte for byte the same
# from the same source with the same gcc: no build id, no .comment, no
# symbols, no unwind tables, no position independence, one fixed set of
# options. `make resident` writes the committed resident-amd64 with it
# and records the compiler in gcc-version; TestResidentBinaryFromSource
# rebuilds it with it and compares, where that compiler is installed.
set -eu
out=${1:?usage: build.sh OUTPUT}
${CC:-gcc} -std=c11 -Os -Wall -Wextra -Werror \
	-static -nostdlib -ffreestanding -fno-builtin \
	-fno-pie -no-pie -fno-stack-protector -fno-stack-clash-protection \
	-fcf-protection=none -fno-asynchronous-unwind-tables -fno-unwind-tables \
	-fno-ident -ffunction-sections -fdata-sections \
	-Wl,--gc-sections -Wl,--build-id=none -Wl,-z,noexecstack \
	-Wl,-z,norelro -Wl,-z,noseparate-code -Wl,--hash-style=gnu -s \
	-o "$out" "$(dirname "$0")/resident.c"
