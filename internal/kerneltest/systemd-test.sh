#!/bin/sh
# make test-systemd's driver, run by kerneltest.service under systemd 252
# in the user-mode Linux guest (systemd-init.sh boots it). It follows
# docs/operations.md as written, as root on a fresh server would: section
# 1 (install the binary), 2 (the dyno user and its subordinate ids), 3
# (the namespace probe), 4a (the system unit), 5 and 6 (check it, the
# cgroup limits), then 4b (the user unit with lingering). The guide's
# commands appear here as the guide gives them, sudo included; where
# this file departs from it, a comment says why.
#
# Every check writes one line to the console, which internal/kerneltest
# (the host side) parses:
#
#	KERNELTEST PASS <check>   or   KERNELTEST FAIL <check> (why)
#
# then KERNELTEST DONE. A failed check ends its section (the system
# unit's, the user unit's), since the checks after it build on it.
# The guest has one slow CPU: sizes are a few MB, and waits are generous.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export SYSTEMD_PAGER= SYSTEMD_COLORS=0
app=demo
home=/home/dyno/.local/share/dyno # the guide's DYNO_HOME
failed=0
t0=$(date +%s)

# say CMD...: print CMD, as the guide writes it, then run it.
say() {
	echo "# $*"
	"$@"
}

# pass NAME / fail NAME WHY: a check's result line.
pass() { echo "KERNELTEST PASS $1 ($(($(date +%s) - t0))s)"; }
fail() {
	echo "KERNELTEST FAIL $1 ($2)"
	failed=1
	return 1
}

# within SECONDS CMD...: run CMD every second until it succeeds, for at
# most SECONDS; its status is CMD's last.
within() {
	n=$1
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 1
	done
}

# as_dyno CMD...: a dyno command as the dyno user, the guide's
# `sudo -u dyno dyno ...`.
as_dyno() { sudo -u dyno "$@"; }

# logs_have RE: the app's stored logs hold a line matching RE.
logs_have() { as_dyno dyno logs -a $app -n 1500 | grep -Eq "$1"; }

# ps_has RE: dyno ps shows a line matching RE.
ps_has() { as_dyno dyno ps -a $app | grep -Eq "$1"; }

# debris: processes of the dyno user, or of its subordinate ids, where
# the apps' dynos run (section 2's range), other than the user's own
# service manager when $1 is "manager-ok".
debris() {
	uid=$(id -u dyno)
	ps -e -o uid=,pid=,args= | awk -v u="$uid" -v m="$1" '
		($1 == u || ($1 >= 100000 && $1 <= 6653599)) &&
		!(m == "manager-ok" && ($3 == "/lib/systemd/systemd" || $3 == "(sd-pam)"))'
}

# leaf NAME CGROUP: the cgroup of the running dyno NAME (name-<hex>)
# under the daemon's delegated CGROUP.
leaf() { ls -d "$2"/dynos/"$1"-* 2>/dev/null | head -n 1; }

# limits NAME CGROUP: the dyno's leaf has the tiny size's limits (in the
# dyno.toml written below): memory.max at kill_ratio times 8 MB, pids.max,
# and cpu.weight.
limits() {
	l=$(leaf "$1" "$2")
	[ -n "$l" ] || { echo "no leaf for $1 under $2/dynos"; return 1; }
	echo "$l: memory.max $(cat "$l/memory.max") pids.max $(cat "$l/pids.max") cpu.weight $(cat "$l/cpu.weight" 2>/dev/null || echo none)"
	[ "$(cat "$l/memory.max")" = 25165824 ] && [ "$(cat "$l/pids.max")" = 32 ] && [ "$(cat "$l/cpu.weight")" = 150 ]
}

# diagnose: what systemd and the daemon said, after a failure (the
# journal's last lines hold a user unit's too).
diagnose() {
	systemctl status dyno --no-pager -n 0 2>&1 | head -n 30
	journalctl -b --no-pager -n 40 2>&1
	as_dyno dyno ps -a $app 2>&1
	as_dyno dyno logs -a $app -n 30 2>&1
}

# --- 1 to 3: the binary, the user, the namespace probe -------------------
host() {
	echo "== section 1: install the binary"
	# The guide copies bin/dyno to the server with scp; here it is on
	# the host's disk, which the guest sees read-only.
	say install -m 0755 "$KT_BIN/dyno" /usr/local/bin/dyno || { fail install "install failed"; return 1; }
	say dyno version || { fail install "dyno version failed"; return 1; }
	pass install

	echo "== section 2: a dedicated user"
	say sudo useradd --system --create-home dyno &&
		say sudo usermod --add-subuids 100000-6653599 --add-subgids 100000-6653599 dyno &&
		say grep '^dyno:' /etc/subuid /etc/subgid || { fail user "useradd or usermod failed"; return 1; }
	grep -qx 'dyno:100000:6553600' /etc/subuid || { fail user "/etc/subuid lacks dyno:100000:6553600"; return 1; }
	pass user

	echo "== section 3: user namespaces"
	say sudo -u dyno sh -c 'mkdir -p ~/probe && cd ~/probe && dyno run --isolate true' && echo "namespaces: ok" ||
		{ fail namespaces "the guide's probe failed"; return 1; }
	pass namespaces

	# The app the guide's later sections manage (`dyno ps -a myapp`):
	# built from a folder with the fixture buildpack (examples/buildpacks),
	# which needs only /bin/sh in the dyno. Sizes are the guest's: a tiny
	# one in dyno.toml (README, "Sizes"; guide, section 6), so that a hog
	# meets memory.max within seconds on the guest's slow page faults.
	echo "== the app"
	as_dyno mkdir -p $home ~dyno/src ~dyno/buildpack
	as_dyno sh -c "printf '[sizes.tiny]\nmemory = \"8MB\"\nkill_ratio = 3\npids = 32\ncpu_weight = 150\n' >$home/dyno.toml"
	# Buildpacks run as the app's ids: readable by others (section 2).
	cp -r "$KT_SRC/examples/buildpacks/fixture/bin" ~dyno/buildpack/ && chown -R dyno:dyno ~dyno/buildpack && chmod -R a+rX ~dyno/buildpack
	as_dyno touch ~dyno/src/.fixture
	# worker: a dyno that stays up; hog: 64 MB in dd's buffer against
	# 24 MB of memory.max, which the kernel kills at once.
	as_dyno sh -c 'cat >~/src/Procfile' <<-'EOF'
		worker: echo "worker $DYNO up"; exec sleep 100000
		hog: echo "hog starts"; dd if=/dev/zero of=/dev/null bs=64M count=1; echo survived; exec sleep 100000
	EOF
	say sudo -u dyno dyno apps:create $app &&
		say sudo -u dyno dyno build /home/dyno/src -a $app -b /home/dyno/buildpack ||
		{ fail deploy "apps:create or build failed"; return 1; }
	pass deploy
}

# --- 4a, 5, 6: the system unit -------------------------------------------
system_unit() {
	cg=/sys/fs/cgroup/system.slice/dyno.service
	echo "== section 4a: a system service"
	say sudo dyno daemon install --system --run-as dyno || { fail system:install "dyno daemon install failed"; return 1; }
	say systemctl cat dyno
	for l in Type=notify NotifyAccess=main 'ExecStart=/usr/local/bin/dyno daemon' "Environment=DYNO_HOME=$home" \
		User=dyno Group=dyno Delegate=yes KillMode=mixed Restart=always WatchdogSec=30; do
		systemctl cat dyno | grep -qx "$l" || { fail system:install "the unit lacks $l"; return 1; }
	done
	pass system:install

	say sudo systemctl daemon-reload
	# Type=notify: enable --now returns once the daemon said READY=1.
	say sudo systemctl enable --now dyno || { fail system:enable "enable --now failed"; diagnose; return 1; }
	say systemctl is-active dyno && say systemctl is-enabled dyno || { fail system:enable "not active and enabled"; diagnose; return 1; }
	pass system:enable

	echo "== section 5 and 6: check it, and the limits"
	say systemctl status dyno --no-pager -n 5
	if journalctl -u dyno -b | grep -i 'limits'; then
		fail system:limits-on "the journal says limits are off"
		return 1
	fi
	say cat $cg/dynos/cgroup.subtree_control
	grep -qw memory $cg/dynos/cgroup.subtree_control && grep -qw pids $cg/dynos/cgroup.subtree_control &&
		grep -qw cpu $cg/dynos/cgroup.subtree_control || { fail system:limits-on "dynos/ lacks memory pids cpu"; return 1; }
	pass system:limits-on

	# The first deploy started web.1, the fixture buildpack's default
	# web, which listens on nothing (R10 would crash it); workers instead.
	say sudo -u dyno dyno ps:scale web=0 worker=2:tiny -a $app || { fail system:scale "ps:scale failed"; return 1; }
	within 120 ps_has '^worker\.2: up' || { fail system:scale "worker.2 not up in 120s"; diagnose; return 1; }
	say sudo -u dyno dyno ps -a $app
	say systemd-cgls --no-pager -u dyno
	limits worker.1 $cg && limits worker.2 $cg || { fail system:scale "a leaf lacks the size's limits"; return 1; }
	pass system:scale

	say sudo -u dyno dyno ps:scale hog=1:tiny -a $app || { fail system:r15 "ps:scale failed"; return 1; }
	within 180 logs_have 'heroku\[hog\.1\]: Process exited with status 137' &&
		logs_have 'heroku\[hog\.1\]: Error R15 \(Memory quota vastly exceeded\)' ||
		{ fail system:r15 "no R15 and status 137 in 180s"; diagnose; return 1; }
	say sh -c "sudo -u dyno dyno logs -a $app -p hog -n 100 | grep -E 'R15|status 137' | head -n 4"
	logs_have 'app\[hog\.1\]: survived' && { fail system:r15 "the hog survived"; return 1; }
	say sudo -u dyno dyno ps:scale hog=0 -a $app
	pass system:r15

	echo "== kill -9 of the daemon: Restart=always"
	pid=$(systemctl show -p MainPID --value dyno)
	w1=$(cat "$(leaf worker.1 $cg)/cgroup.procs" 2>/dev/null | head -n 1)
	say kill -9 "$pid"
	newpid() { p=$(systemctl show -p MainPID --value dyno) && [ "$p" != 0 ] && [ "$p" != "$pid" ] && systemctl is-active -q dyno; }
	within 120 newpid || { fail system:kill-9 "no new daemon in 120s"; diagnose; return 1; }
	# The formation comes back from the ledger: new dynos, not the old.
	within 180 ps_has '^worker\.2: up' && within 60 ps_has '^worker\.1: up' ||
		{ fail system:kill-9 "the formation did not come back in 240s"; diagnose; return 1; }
	say sh -c "journalctl -u dyno -b --no-pager | grep -E 'status=9/KILL|Scheduled restart job'"
	journalctl -u dyno -b | grep -q 'status=9/KILL' || { fail system:kill-9 "the journal lacks the daemon's death by SIGKILL"; return 1; }
	say systemctl show -p MainPID -p NRestarts dyno
	say sudo -u dyno dyno ps -a $app
	[ -z "$w1" ] || ! kill -0 "$w1" 2>/dev/null || { fail system:kill-9 "worker.1's old process $w1 outlived its daemon"; return 1; }
	limits worker.1 $cg || { fail system:kill-9 "the new leaf lacks the size's limits"; return 1; }
	pass system:kill-9

	echo "== a hung daemon: WatchdogSec=30"
	pid=$(systemctl show -p MainPID --value dyno)
	say kill -STOP "$pid"
	# 30 s without a ping, then SIGABRT (systemd follows each kill
	# signal with SIGCONT, so a stopped daemon gets it too), on which the
	# Go runtime writes every goroutine's stack to the journal and exits.
	within 240 sh -c "journalctl -u dyno -b | grep -q \"Failed with result 'watchdog'\"" ||
		{ fail system:watchdog "no watchdog failure in 240s"; diagnose; return 1; }
	say sh -c "journalctl -u dyno -b --no-pager | grep -E 'Watchdog timeout|with signal SIGABRT|SIGABRT: abort|^goroutine 1 |watchdog'"
	journalctl -u dyno -b | grep -q 'SIGABRT: abort' || { fail system:watchdog "no goroutine dump in the journal"; return 1; }
	within 120 newpid || { fail system:watchdog "no new daemon in 120s"; diagnose; return 1; }
	within 180 ps_has '^worker\.2: up' && within 60 ps_has '^worker\.1: up' ||
		{ fail system:watchdog "the formation did not come back in 240s"; diagnose; return 1; }
	say systemctl show -p MainPID -p NRestarts dyno
	pass system:watchdog

	echo "== systemctl stop: nothing left"
	say sudo systemctl stop dyno || { fail system:stop "stop failed"; return 1; }
	left=$(debris)
	[ -z "$left" ] || { fail system:stop "left: $left"; return 1; }
	[ ! -d $cg ] || [ -z "$(cat $cg/cgroup.procs)" ] || { fail system:stop "the unit's cgroup holds processes"; return 1; }
	echo "no process of uid $(id -u dyno) (dyno) or of its subordinate ids left; $cg: $([ -d $cg ] && echo empty || echo gone)"
	say sudo -u dyno dyno ps -a $app
	say systemctl is-active dyno
	# The user unit below runs the same DYNO_HOME: the system one goes.
	say sudo systemctl disable dyno
	pass system:stop
}

# --- 4b: the user unit, with lingering ------------------------------------
user_unit() {
	uid=$(id -u dyno)
	rt=/run/user/$uid
	mgr=/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service
	cg=$mgr/app.slice/dyno.service
	echo "== section 4b: a user service, with lingering"
	say sudo -u dyno dyno daemon install --user || { fail user:install "dyno daemon install --user failed"; return 1; }
	grep -qx 'WantedBy=default.target' ~dyno/.config/systemd/user/dyno.service || { fail user:install "no WantedBy=default.target"; return 1; }
	pass user:install

	# The guide: `sudo loginctl enable-linger dyno` where polkit refuses
	# it to the user. logind starts the user's manager, user@UID.service.
	say sudo loginctl enable-linger dyno || { fail user:linger "enable-linger failed"; diagnose; return 1; }
	within 120 systemctl is-active user@$uid.service || { fail user:linger "user@$uid.service not active in 120s"; systemctl status user@$uid.service --no-pager; return 1; }
	say loginctl show-user dyno -p Linger -p State
	say cat $mgr/cgroup.controllers
	pass user:linger

	# The guide: sudo -u gives no session, so systemctl --user finds no
	# manager; with XDG_RUNTIME_DIR given back it finds the lingering one.
	echo "# sudo -u dyno systemctl --user is-active dyno"
	out=$(sudo -u dyno systemctl --user is-active dyno 2>&1)
	echo "$out"
	echo "$out" | grep -q 'Failed to connect to bus' ||
		{ fail user:enable "systemctl --user did not fail without XDG_RUNTIME_DIR, as the guide says"; return 1; }
	u() { sudo -u dyno XDG_RUNTIME_DIR=$rt "$@"; }
	say sudo -u dyno XDG_RUNTIME_DIR=/run/user/$uid systemctl --user daemon-reload &&
		say sudo -u dyno XDG_RUNTIME_DIR=/run/user/$uid systemctl --user enable --now dyno ||
		{ fail user:enable "enable --now failed"; diagnose; return 1; }
	u systemctl --user is-active dyno || { fail user:enable "not active"; return 1; }
	pass user:enable

	# The guide's `sudo -u dyno dyno` finds the user daemon's socket in
	# /run/user/UID/dyno, XDG_RUNTIME_DIR or not; and root reads its
	# lines by the journal's field for user units.
	within 180 ps_has '^worker\.2: up' || { fail user:dynos "worker.2 not up in 180s"; diagnose; return 1; }
	say sudo -u dyno dyno ps -a $app
	say sudo -u dyno XDG_RUNTIME_DIR=/run/user/$uid systemctl --user status dyno --no-pager -n 0
	say sh -c 'journalctl _SYSTEMD_USER_UNIT=dyno.service --no-pager | tail -n 3'
	journalctl _SYSTEMD_USER_UNIT=dyno.service | grep -q 'listening on /run/user/'$uid'/dyno/dyno.sock' ||
		{ fail user:dynos "the journal lacks the daemon's socket line"; return 1; }
	say cat $cg/dynos/cgroup.subtree_control
	limits worker.1 $cg || { fail user:dynos "the leaf lacks the size's limits"; return 1; }
	pass user:dynos

	say sudo -u dyno XDG_RUNTIME_DIR=/run/user/$uid systemctl --user stop dyno || { fail user:stop "stop failed"; return 1; }
	left=$(debris manager-ok)
	[ -z "$left" ] || { fail user:stop "left: $left"; return 1; }
	[ ! -d $cg ] || [ -z "$(cat $cg/cgroup.procs)" ] || { fail user:stop "the unit's cgroup holds processes"; return 1; }
	echo "after the stop, the user's manager alone: $(ps -u dyno -o args= | tr '\n' ' ')"
	# Lingering off: the user's manager goes too, and with it the user.
	say sudo loginctl disable-linger dyno
	within 60 sh -c '! systemctl is-active -q user@'$uid'.service'
	within 30 sh -c '[ -z "$(ps -u dyno -o pid=)" ]'
	left=$(debris)
	[ -z "$left" ] || { fail user:stop "left after disable-linger: $left"; return 1; }
	echo "no process of uid $uid (dyno) or of its subordinate ids left; user@$uid.service: $(systemctl is-active user@$uid.service)"
	pass user:stop
}

host && system_unit
# The user section runs even after a failed system one, if the user is
# there; it stops the system daemon first, should that still run.
id dyno >/dev/null 2>&1 && { systemctl stop dyno 2>/dev/null; user_unit; }
echo "test-systemd: $(($(date +%s) - t0))s in the guest"
echo "KERNELTEST DONE"
