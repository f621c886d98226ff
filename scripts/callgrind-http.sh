#!/usr/bin/env bash
# Instructions per request of modfilterd (1 worker) under callgrind, for
# comparing commits on a noisy machine: usage: callgrind-http.sh [PATH]
# (default /v1/score; /v1/comments queues each comment in a private Redis).
# A 2 s warm-up, then counting on for DURATION s (default 4) of wrk -t1
# -c16 with real comments; prints requests and instructions per request.
# The profile stays in $BUILD/callgrind.http.* for callgrind_annotate.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D=${DATASETS:-../shared/datasets}
DURATION=${DURATION:-4}
CONNS=16
P=${1:-/v1/score}
. scripts/http-lib.sh
command -v callgrind_control >/dev/null || { echo "valgrind not installed"; exit 1; }
OUT="$(cd "$BUILD" && pwd)/callgrind.http"
rm -f "$OUT"*
start_daemon 1 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$OUT"
wrk -t1 -c8 -d2s -s "$T/post.lua" "$URL" -- "$P" >/dev/null 2>&1
redis-cli -p "$RPORT" flushall >/dev/null # the measured run reuses the ids
callgrind_control -i on "$DPID" >/dev/null
out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$T/post.lua" "$URL" -- "$P" 2>&1)
callgrind_control -i off "$DPID" >/dev/null
callgrind_control -d "$DPID" >/dev/null 2>&1
n=$(echo "$out" | awk '/requests in/ {print $1}')
stop_pid "$DPID"
total=$(cat "$OUT"* | awk '/^totals:/ {s += $2} END {print s}')
echo "$P: $n requests, $((total / n)) instructions per request"
