#!/bin/sh
# run.sh [ROUNDS] [BACKENDS]: wrk -t2 -c50 -d10s against nginx (2 workers,
# upstream keepalive 64, HTTP/1.1 to the backends) and against the router,
# interleaved, each round paired; prints req/s, p50, p99, the proxy's CPU
# per request and the router's GC cycles. Needs nginx and wrk.
set -eu
ROUNDS=${1:-3}
NB=${2:-1}
DUR=${DUR:-10s}
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'kill $(cat $T/*.pid 2>/dev/null) 2>/dev/null; sleep 0.3; rm -rf $T' EXIT
go build -o $T/rb ./internal/routerbench
BACKS=""
UP=""
for i in $(seq 1 $NB); do
	a=127.0.0.1:$((18080 + i))
	nice -n -10 $T/rb -okserver $a & echo $! > $T/ok$i.pid
	BACKS="${BACKS:+$BACKS,}$a"
	UP="$UP server $a;"
done
cat > $T/nginx.conf <<CONF
worker_processes 2;
pid $T/nginx.pid;
error_log $T/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	upstream b { $UP keepalive 64; }
	server {
		listen 127.0.0.1:8091;
		location / {
			proxy_pass http://b;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto http;
			proxy_set_header X-Forwarded-Port 8091;
			proxy_set_header X-Request-Start \$msec;
			proxy_set_header X-Request-Id \$request_id;
			add_header Via "1.1 nginx";
		}
	}
}
CONF
nice -n -10 /usr/sbin/nginx -c $T/nginx.conf
GOMAXPROCS=${ROUTER_GOMAXPROCS:-} nice -n -10 $T/rb -listen 127.0.0.1:8090 -backends $BACKS -gcstats 2>$T/rb.log & echo $! > $T/rb.pid
sleep 0.5
cpu() { # utime+stime ticks of the given pids
	t=0; for p in "$@"; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t + $1 + $2)); done; echo $t
}
run() { # name port pids...
	name=$1 port=$2; shift 2
	c0=$(cpu "$@")
	wrk -t2 -c50 -d$DUR --latency -H 'Host: bench.localhost' http://127.0.0.1:$port/ > $T/wrk.out
	c1=$(cpu "$@")
	rps=$(awk '/Requests\/sec/ {print $2}' $T/wrk.out)
	p50=$(awk '$1=="50%" {print $2}' $T/wrk.out)
	p99=$(awk '$1=="99%" {print $2}' $T/wrk.out)
	n=$(awk '/requests in/ {print $1}' $T/wrk.out)
	err=$(grep -E "Non-2xx|Socket errors" $T/wrk.out | tr -s ' ' | tr '\n' ' ' || true)
	us=$(echo "$c0 $c1 $n" | awk '{printf "%.1f", ($2-$1)*10000/$3}')
	echo "$name rps=$rps p50=$p50 p99=$p99 us/req=$us $err"
}
NGW=$(pgrep -P $(cat $T/nginx.pid) | tr '\n' ' ')
for r in $(seq 1 $ROUNDS); do
	run "nginx  r$r" 8091 $NGW
	g0=$(grep -c . $T/rb.log || true)
	run "router r$r" 8090 $(cat $T/rb.pid)
done
echo "router gc: $(grep gc= $T/rb.log | head -1) ... $(grep gc= $T/rb.log | tail -1)"
