#!/bin/sh
# PID 1 of make test-kernel's guest: a user-mode Linux 6.1 kernel
# (linux.uml) whose root is the host's filesystem, read-only (hostfs).
# It runs the kernel-level tests, built static outside, as root and then
# as uid 65534 in a cgroup delegated the way systemd's Delegate=yes
# delegates one, and writes one line per run to the console:
#
#	KERNELTEST PASS <run>   or   KERNELTEST FAIL <run> (exit N)
#
# then KERNELTEST DONE, which internal/kerneltest (the host side) parses.
# The kernel passes the unknown name=value words of its command line to
# init as environment: KT_BIN is the folder of the test binaries and of
# a static dyno, KT_SRC the repository (each test binary runs in its
# package folder, as go test runs it).

# Nothing is mounted yet. The guest's /tmp is a fresh tmpfs, where the
# tests write; mode 1777 lets uid 65534 write there too.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# A repository (or its test binaries) under the host's /tmp would vanish
# under the guest's own: each such folder is bind-mounted aside on a
# scratch tmpfs first (/mnt exists on the read-only root), then back at
# its path inside the new /tmp.
mount -t tmpfs tmpfs /mnt
kept=
for dir in "$KT_SRC" "$KT_BIN"; do
	case $dir in /tmp/*)
		n=$(( ${#kept} + 1 )); mkdir "/mnt/$n" && mount --bind "$dir" "/mnt/$n" && kept="$kept $n:$dir" ;;
	esac
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
for k in $kept; do
	n=${k%%:*} dir=${k#*:}
	mkdir -p "$dir" && mount --bind "/mnt/$n" "$dir"
done
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
# Dynos mount an overlay over their slug; UML builds overlayfs as a module.
insmod "$(find /usr/lib/uml/modules -name overlay.ko | head -n 1)"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TMPDIR=/tmp DYNO_KERNEL_TEST=1 DYNO_TEST_BINARY="$KT_BIN/dyno"
echo "KERNELTEST BOOT $(uname -r) $(cat /sys/fs/cgroup/cgroup.controllers)"

# The root cgroup may hold processes and still enable controllers for its
# children (the No Internal Process Constraint exempts it).
echo "+memory +pids +cpu" >/sys/fs/cgroup/cgroup.subtree_control

# run NAME CMD...: run CMD in the package folder it names last and report.
run() {
	name=$1
	shift
	echo "KERNELTEST RUN $name"
	"$@"
	status=$?
	if [ $status -eq 0 ]; then
		echo "KERNELTEST PASS $name"
	else
		echo "KERNELTEST FAIL $name (exit $status)"
	fi
}

# delegated NAME CMD...: CMD as uid 65534, alone in /sys/fs/cgroup/NAME,
# handed over as systemd hands a Delegate=yes unit its cgroup: the
# controllers enabled down to it, the directory and its files chowned to
# the user, the process moved in, and only then the drop to the uid.
delegated() {
	cg=/sys/fs/cgroup/$1
	shift
	mkdir "$cg" && chown -R 65534:65534 "$cg" || return 1
	sh -c 'echo $$ >"$0/cgroup.procs" && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"' "$cg" \
		sh -c 'echo "as uid $(id -u) in cgroup $(cut -d: -f3 /proc/self/cgroup)"; exec "$@"' sh "$@"
}

for mode in root nobody; do
	as=
	[ $mode = nobody ] && as="delegated $mode-cgroup"
	run "$mode:isolate/cgroup" $as sh -c 'cd "$KT_SRC/isolate/cgroup" && exec "$KT_BIN/cgroup.test" -test.run ^TestEnforce -test.v -test.count=1 -test.timeout=10m'
	[ $mode = nobody ] && as="delegated $mode-isolate"
	run "$mode:isolate" $as sh -c 'cd "$KT_SRC/isolate" && exec "$KT_BIN/isolate.test" -test.run ^TestSandboxCloneIntoCgroup$ -test.v -test.count=1 -test.timeout=10m'
	[ $mode = nobody ] && as="delegated $mode-dyno"
	run "$mode:cmd/dyno" $as sh -c 'cd "$KT_SRC/cmd/dyno" && exec "$KT_BIN/dyno.test" -test.run "^(TestKernel|TestIsolatedOOMIsR15\$)" -test.v -test.count=1 -test.timeout=15m'
done

echo "KERNELTEST DONE"
# Power off: an init that exits makes the kernel panic.
echo o >/proc/sysrq-trigger
sleep 60
