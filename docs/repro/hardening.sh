#!/bin/bash
# The hardening round's attacks, rerun through the binary as uid 65534
# (run as root: it drops to 65534 with setpriv): app names that are
# paths, formations past the limit, a cut ledger, API bodies and slow
# clients, interrupted builds, a huge bin/release, DYNO_HOME inside the
# project, malformed .env lines. Each prints what dyno answers now.
# Needs curl and python3. usage: docs/repro/hardening.sh bin/dyno
set -u
[ $# -eq 1 ] || { echo "usage: $0 path/to/dyno" >&2; exit 2; }
DYNO=$(realpath "$1")
W=$(mktemp -d /tmp/dyno-repro.XXXX); chmod 755 $W
export H=$W/home; mkdir -p $H
chown -R 65534:65534 $W
as() { setpriv --reuid 65534 --regid 65534 --clear-groups env -i PATH=/usr/bin:/bin HOME=$W DYNO_HOME=$H DYNO_SOCKET=$H/dyno.sock NO_COLOR=1 "$@"; }
echo "== 1. app names"
as $DYNO apps:create alpha >/dev/null
as $DYNO config -a ../../other/apps/alpha; echo "exit $?"
as $DYNO config:set X=1 -a ../../decoy; echo "exit $?"; ls -d $W/decoy 2>&1 | head -1
echo "== 3. truncated ledger"
as $DYNO config:set A=1 -a alpha >/dev/null; as $DYNO config:set B=2 -a alpha >/dev/null
L=$H/apps/alpha/ledger.jsonl; head -n -1 $L > $W/l && cat $W/l > $L
as $DYNO releases:verify -a alpha; echo "exit $?"
: > $L; as $DYNO config:set C=3 -a alpha; echo "exit $?"; wc -c < $L
echo "== 2, 4. the API"
as $DYNO apps:create beta >/dev/null
mkdir -p $W/src && touch $W/src/.fixture && printf 'web: exec sleep 1000\nworker: exec sleep 1000\n' > $W/src/Procfile && chown -R 65534 $W/src
as $DYNO build $W/src -a beta -b fixture | tail -1
echo "== 5. a build whose stdout is closed goes on and releases"
as $DYNO build $W/src -a beta -b fixture | head -1; echo "exit ${PIPESTATUS[0]}; $(as $DYNO releases -a beta -n 1 | tail -1)"
ls $H/builds/ | wc -l
echo "== 2. ps:scale past the limit"
for i in 1 2 3; do as $DYNO ps:scale worker+50 -a beta; done
as $DYNO ps:scale worker=0 -a beta >/dev/null
# exec: $! is then the daemon itself (setpriv and env exec it).
(exec setpriv --reuid 65534 --regid 65534 --clear-groups env -i PATH=/usr/bin:/bin HOME=$W DYNO_HOME=$H DYNO_SOCKET=$H/dyno.sock $DYNO daemon) > $W/daemon.log 2>&1 & DPID=$!
for i in $(seq 100); do [ -S $H/dyno.sock ] && break; sleep 0.05; done
api() { curl -s --unix-socket $H/dyno.sock -o $W/body -w '%{http_code}' "$@"; echo " $(head -c 200 $W/body)"; }
api -X PATCH -H 'Content-Type: application/json' --data '{"updates":[{"type":"web","quantity":99999999}]}' http://dyno/apps/beta/formation
printf '{"A":"\xff\xfe"}' > $W/bad.json
api -X PATCH --data-binary @$W/bad.json http://dyno/apps/beta/config-vars
DP=$DPID
echo "daemon RSS before: $(grep VmRSS /proc/$DP/status)"
python3 -c "import sys; sys.stdout.write('{\"A\":\"' + 'a'*200*1024*1024 + '\"}')" > $W/big.json
api -X PATCH --data-binary @$W/big.json http://dyno/apps/beta/config-vars
echo "daemon RSS after 200 MB body: $(grep VmRSS /proc/$DP/status)"
python3 - $H/dyno.sock <<'PY'
import socket, sys, time
socks=[]
for i in range(200):
    s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.send(b"PATCH /apps/beta/config-vars HTTP/1.1\r\nHost: d\r\nContent-Length: 100\r\n\r\n" + b"x"*50)
    socks.append(s)
t0=time.time(); closed=0
for s in socks:
    s.settimeout(60)
    try:
        while s.recv(4096): pass
    except Exception: pass
    closed+=1
print(f"200 half-sent requests: {closed} closed by the daemon after {time.time()-t0:.1f} s")
PY
kill $DPID; wait $DPID 2>/dev/null
echo "== 8. a bin/release of 200,000 process types"
mkdir -p $W/bp/bin
printf '#!/bin/sh\necho Huge\n' > $W/bp/bin/detect
printf '#!/bin/sh\nexit 0\n' > $W/bp/bin/compile
printf '#!/bin/sh\necho "default_process_types:"\ni=0; while [ $i -lt 200000 ]; do echo "  t$i: sleep 1"; i=$((i+1)); done\n' > $W/bp/bin/release
chmod +x $W/bp/bin/*; chown -R 65534 $W/bp
as $DYNO apps:create huge >/dev/null
t0=$(date +%s.%N); as $DYNO build $W/src -a huge -b $W/bp 2>&1 | tail -2; echo "exit ${PIPESTATUS[0]} after $(python3 -c "import time; print(round(time.time() - $t0, 2))") s"
echo "== 6. DYNO_HOME under the project folder"
mkdir -p $W/p2 && printf 'web: true\n' > $W/p2/Procfile && chown -R 65534 $W/p2
(cd $W/p2 && setpriv --reuid 65534 --regid 65534 --clear-groups env -i PATH=/usr/bin:/bin HOME=$W/p2 DYNO_HOME=$W/p2/.local/share/dyno $DYNO run --isolate 'echo "[$(ls -A /app/.local/share/dyno)]"')
echo "== 7. .env"
mkdir -p $W/proj && printf 'web: echo ok\n' > $W/proj/Procfile && printf 'A B=1\n\xff\xfe=bin\n=novalue\nB' > $W/proj/.env && chown -R 65534 $W/proj
(cd $W/proj && as $DYNO check; echo "exit $?")
rm -rf $W
