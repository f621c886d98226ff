#!/usr/bin/env bash
# HTTP figures for `make bench`: wrk on loopback against modfilterd with 1 and
# 2 workers (POST /v1/comments with queueing into a Redis without
# persistence, real comments each with a new id; POST /v1/score), and the
# same wrk against a bare evhttp server answering a fixed reply, in the
# same run.  Each line: requests/s, wrk's p50, p99, p99.9 and slowest.
# DURATION (s, default 10) and CONNS (default 64) tune it.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D=${DATASETS:-../shared/datasets}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
. scripts/http-lib.sh

cc -O2 -o "$T/bare_http" bench/bare_http.c $(pkg-config --cflags --libs libevent libevent_pthreads) -pthread
echo "wrk -t2 -c$CONNS -d${DURATION}s on $(nproc) cores (wrk, Redis and the server share them)"
for w in 1 2; do
    "$T/bare_http" "$T/bare.port" "$w" >/dev/null & BPID=$!; PIDS+=($BPID)
    for i in $(seq 1 100); do [ -s "$T/bare.port" ] && break; sleep 0.05; done
    run_wrk "bare evhttp, $w thread(s)" "http://127.0.0.1:$(cat "$T/bare.port")" /
    bare=$(cat "$T/last")
    stop_pid "$BPID"; rm -f "$T/bare.port"
    redis-cli -p "$RPORT" flushall >/dev/null
    start_daemon "$w"
    run_wrk "POST /v1/comments, $w worker(s)" "$URL" /v1/comments
    comments=$(cat "$T/last")
    queued=$(redis-cli -p "$RPORT" zcard modfilter:queue)
    run_wrk "POST /v1/score, $w worker(s)" "$URL" /v1/score
    rss=$(awk '/VmRSS/ {print $2}' /proc/$DPID/status)
    printf '  queued in Redis: %s; daemon RSS %.1f MiB; comments/bare = %.2f\n' \
        "$queued" "$(echo "$rss / 1024" | bc -l)" "$(echo "$comments / $bare" | bc -l)"
    stop_pid "$DPID"
done
