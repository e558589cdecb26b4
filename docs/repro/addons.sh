#!/bin/bash
# The README tour's add-ons and drain, through the binary as uid 65534
# (run as root: it drops to 65534 with setpriv, as PostgreSQL refuses
# root): node-hello pushed to a daemon, a database and a Redis attached
# in releases, used from one-off dynos and the tools, backed up and
# restored, a drain receiving the app's lines, the daemon killed with -9
# and started again with the data there, and nothing left once it stops.
# Each step prints what dyno answers and how long it took.
# Needs git, curl, python3, PostgreSQL and redis-server.
# usage: docs/repro/addons.sh bin/dyno
set -u
[ $# -eq 1 ] || { echo "usage: $0 path/to/dyno" >&2; exit 2; }
DYNO=$(realpath "$1")
EXAMPLES=$(cd "$(dirname "$0")/../.." && pwd)/examples
W=$(mktemp -d /tmp/dyno-addons.XXXX); chmod 755 $W
H=$W/home; mkdir -p $H $W/src
ROUTER=127.0.0.1:18080; DRAIN=18514
printf '[router]\nlisten = "%s"\n' $ROUTER > $H/dyno.toml
cp -r $EXAMPLES/node-hello/. $W/src
chown -R 65534:65534 $W
as() { setpriv --reuid 65534 --regid 65534 --clear-groups env -i PATH=/usr/bin:/bin HOME=$W DYNO_HOME=$H DYNO_SOCKET=$H/dyno.sock NO_COLOR=1 \
	GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Ann GIT_AUTHOR_EMAIL=ann@example.com GIT_COMMITTER_NAME=Ann GIT_COMMITTER_EMAIL=ann@example.com "$@"; }
# timed runs a command as 65534 in the app's folder and says how long it took.
timed() { local s=$(date +%s.%N); (cd $W/src && as "$@"); local rc=$?; printf '   [exit %d, %.2f s]\n' $rc $(echo "$(date +%s.%N) - $s" | bc); }
# daemon starts one and waits until it answers; its pid is in daemon.lock.
daemon() { rm -f $H/dyno.sock; cd $W; as $DYNO daemon >> $W/daemon.log 2>&1 & until as $DYNO apps > /dev/null 2>&1; do sleep 0.1; done; }
dpid() { cat $H/daemon.lock; }
web() { until curl -sf -H "Host: node-hello.localhost" http://$ROUTER/ > $W/web.out; do sleep 0.2; done; cat $W/web.out; }

cd $W/src && as git init -q -b main && as git add -A && as git commit -qm hello && as $DYNO apps:create node-hello > /dev/null
daemon
echo "== git push dyno main"; timed git push -q dyno main 2>&1 | grep -E "Released|deployed" ; web
echo "== addons:create heroku-postgresql (first use: initdb, the daemon starts the server)"; timed $DYNO addons:create heroku-postgresql
until grep -q database: <(curl -s -H "Host: node-hello.localhost" http://$ROUTER/); do sleep 0.2; done; web
echo "== addons:create heroku-redis"; timed $DYNO addons:create heroku-redis
echo "== from a one-off dyno"; timed $DYNO run -a node-hello --no-tty 'psql "$DATABASE_URL" -XAtc "select current_user, current_database()"; redis-cli --no-auth-warning -u "$REDIS_URL" ping'
echo "== pg:psql"; timed $DYNO pg:psql -c "create table visits (n int); insert into visits select generate_series(1, 100000)"
echo "== pg:info"; timed $DYNO pg:info
echo "== pg:backups:capture"; timed $DYNO pg:backups:capture
as $DYNO pg:psql -c "delete from visits" 2>/dev/null
echo "== pg:backups:restore --confirm node-hello"; timed $DYNO pg:backups:restore --confirm node-hello
echo "== after the restore"; as $DYNO pg:psql -c "select count(*) from visits" -a node-hello 2>/dev/null
echo "== pg:backups"; as $DYNO pg:backups -a node-hello
echo "== drains:add syslog://127.0.0.1:$DRAIN"
python3 -c '
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
c,_=s.accept(); f=c.makefile("rb")
while True:
    n=b""
    while (b:=f.read(1)) != b" ": n+=b
    sys.stdout.write(f.read(int(n)).decode()+"\n"); sys.stdout.flush()
' $DRAIN > $W/drain.out 2>/dev/null &
DRAINPID=$!
timed $DYNO drains:add syslog://127.0.0.1:$DRAIN
curl -s -o /dev/null -H "Host: node-hello.localhost" http://$ROUTER/drained
until grep -q "GET /drained" $W/drain.out; do sleep 0.2; done
grep -m2 -E "router|GET /drained" $W/drain.out
echo "== kill -9 of the daemon, then a new one"
old=$(dpid); kill -9 $old; while kill -0 $old 2>/dev/null; do sleep 0.1; done
# The servers stop on their own once the daemon is gone (Pdeathsig).
for i in $(seq 50); do pgrep -u 65534 -f "postgres -D|redis-server" > /dev/null || break; sleep 0.1; done
ps -u 65534 -o pid,args | grep -E "postgres|redis-server" | grep -v grep || echo "   no postgres or redis-server left"
daemon; web
echo "== the data after kill -9"; timed $DYNO pg:psql -c "select count(*) from visits"
echo "== addons:logs postgresql -n 4"; as $DYNO addons:logs postgresql -n 4
echo "== daemon stopped"
old=$(dpid); kill $old; while kill -0 $old 2>/dev/null; do sleep 0.2; done
kill $DRAINPID 2>/dev/null
ps -u 65534 -o pid,args | grep -E "postgres|redis-server|dyno" | grep -v grep || echo "   nothing left"
grep -E "database system is shut down" $H/addons/postgresql/logs/* >/dev/null && echo "   postgresql: database system is shut down (fast shutdown, no recovery needed)"
