#!/bin/sh
# PID 1 of make test-systemd's guest, before systemd: a user-mode Linux
# 6.1 kernel (linux.uml) whose root is the host's filesystem, read-only
# (hostfs). It builds a writable root for Debian's systemd and hands PID 1
# to it, booting straight into kerneltest.service, which runs
# systemd-test.sh (the guide followed step by step) and powers off.
#
# The recipe (shared/reference/uml.md): an overlay with the host's / as
# its lower layer and a tmpfs as its upper one, so that useradd, the unit
# and the binary in /usr/local/bin land in memory; pivot_root into it,
# not chroot alone, or the kernel refuses user namespaces to everything
# below (unshare(CLONE_NEWUSER) gives EPERM to a chrooted process).
# KT_BIN (the folder of the static dyno) and KT_SRC (the repository) come
# from the kernel's command line, as in init.sh.
set -e
mount -t proc proc /proc
mount -t sysfs sysfs /sys
ip link set lo up
# Dynos mount an overlay over their slug, and so does this script.
insmod "$(find /usr/lib/uml/modules -name overlay.ko | head -n 1)"
echo "KERNELTEST BOOT $(uname -r) (systemd $(/lib/systemd/systemd --version | head -n 1))"

# The overlay's upper layer on a tmpfs at /media (a folder of the host's),
# not at /tmp: a repository under the host's /tmp must stay in sight.
mount -t tmpfs -o mode=0755 tmpfs /media
mkdir /media/upper /media/work
# /mnt: an empty folder of the host's to mount the new root on.
mount -t overlay overlay -o lowerdir=/,upperdir=/media/upper,workdir=/media/work /mnt
cd /mnt
mkdir -p oldroot
# An overlay upper dir on this overlay is refused ("not supported as
# upperdir"), and each dyno has one under DYNO_HOME: /home gets a tmpfs
# of its own, so that the home useradd makes is a real filesystem.
mount -t tmpfs -o mode=0755 tmpfs home
# The host's /etc/subuid may name ranges the guide's would overlap; the
# guest starts from empty files, as a fresh server would.
: >etc/subuid
: >etc/subgid
# The host is a container, and systemd would take the guest for one by
# its /.dockerenv: it would then skip what it skips in containers, and
# read its settings from PID 1's arguments rather than the kernel's
# command line. The guest is a machine of its own.
rm -f .dockerenv
# A repository or binaries under /tmp would be gone by the time the test
# runs (systemd-tmpfiles empties /tmp at boot): what the test uses is
# copied into the new root first.
case "$KT_SRC $KT_BIN" in
*/tmp/*)
	mkdir -p opt/kerneltest/bin opt/kerneltest/src/internal opt/kerneltest/src/examples/buildpacks/fixture
	cp "$KT_BIN/dyno" opt/kerneltest/bin/
	cp -r "$KT_SRC/internal/kerneltest" opt/kerneltest/src/internal/
	cp -r "$KT_SRC/examples/buildpacks/fixture/bin" opt/kerneltest/src/examples/buildpacks/fixture/
	KT_SRC=/opt/kerneltest/src KT_BIN=/opt/kerneltest/bin
	;;
esac

# The test unit: a oneshot whose output is the console, and whose end,
# pass or fail, powers the guest off.
cat >etc/systemd/system/kerneltest.service <<EOF
[Unit]
Description=make test-systemd: docs/operations.md followed in the guest
# Booted as the default unit, this one pulls in what it needs and no more:
# the system bus, through which loginctl reaches systemd-logind (started
# on demand) for the user unit's lingering.
Wants=dbus.socket
After=basic.target dbus.socket

[Service]
Type=oneshot
Environment=KT_BIN=$KT_BIN KT_SRC=$KT_SRC
Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=/bin/sh $KT_SRC/internal/kerneltest/systemd-test.sh
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
ExecStopPost=/bin/systemctl poweroff --no-block
EOF

# systemd mounts /proc, /sys and the cgroup2 hierarchy itself.
umount /sys
umount /proc
pivot_root . oldroot
# --show-status=error: systemd's line per unit only when one fails.
exec chroot . /lib/systemd/systemd --show-status=error --unit=kerneltest.service
