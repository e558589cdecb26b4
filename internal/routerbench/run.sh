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
	a=127.0.0.1:$((28080 + i))
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
		listen 127.0.0.1:28091;
		location / {
			proxy_pass http://b;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto http;
			proxy_set_header X-Forwarded-Port 28091;
			proxy_set_header X-Request-Start \$msec;
			proxy_set_header X-Request-Id \$request_id;
			add_header Via "1.1 nginx";
		}
	}
}
CONF
nice -n -10 /usr/sbin/nginx -c $T/nginx.conf
GODEBUG=gctrace=1 GOMAXPROCS=${ROUTER_GOMAXPROCS:-} nice -n -10 $T/rb -listen 127.0.0.1:28090 -backends $BACKS -gcstats 2>$T/rb.log & echo $! > $T/rb.pid
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
# quiet waits (up to 60 s) until the box is at least 90 % idle for a
# second: other jobs on the same two cores skew any comparison.
quiet() {
	for i in $(seq 60); do
		set -- $(head -1 /proc/stat); a=$(( $2+$3+$4+$7+$8 )); b=$5
		sleep 1
		set -- $(head -1 /proc/stat); a=$(( $2+$3+$4+$7+$8 - a )); b=$(( $5 - b ))
		[ $(( b * 100 / (a + b + 1) )) -ge 90 ] && return
	done
	echo "(box not quiet)"
}
wrk -t2 -c50 -d2s -H 'Host: bench.localhost' http://127.0.0.1:28090/ >/dev/null # warm up
NGW=$(pgrep -P $(cat $T/nginx.pid) | tr '\n' ' ')
# GC cycles so far, and those the runtime forced because two minutes
# passed without one (gctrace marks them "(forced)").
gc() { grep -c '^gc [0-9]' $T/rb.log || true; }
forced() { grep -c '^gc [0-9].*(forced)' $T/rb.log || true; }
for r in $(seq 1 $ROUNDS); do
	quiet; run "nginx  r$r" 28091 $NGW | tee -a $T/results
	g0=$(gc) f0=$(forced)
	quiet; run "router r$r" 28090 $(cat $T/rb.pid) | tee -a $T/results
	sleep 1.2
	echo "router r$r gc cycles during the run: $(( $(gc) - g0 )), of which forced by the 2-minute timer: $(( $(forced) - f0 ))"
done
# Paired ratios: each router round against nginx in the same round.
awk '/^nginx/ {split($3,a,"="); n=a[2]; split($5,b,"="); np=b[2]+0}
     /^router/ && /rps=/ {split($3,a,"="); split($5,b,"="); printf "round %s: router/nginx req/s %.2f, p99 %.2f\n", $2, a[2]/n, (b[2]+0)/np}' $T/results
