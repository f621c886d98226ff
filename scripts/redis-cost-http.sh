#!/usr/bin/env bash
# CPU per queued comment, by process, and what Redis spends on the submit
# script: usage: redis-cost-http.sh [WORKERS] (default 2).  wrk -t2 -c64
# POST /v1/comments for DURATION s (default 4) with real comments, each
# with a new id, into a private Redis without persistence; then Redis's
# INFO commandstats (EVALSHA calls and usec) and the CPU time (/proc, user
# + system, and each apart) of Redis, the daemon and wrk over the run.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D=${DATASETS:-../shared/datasets}
DURATION=${DURATION:-4}
CONNS=${CONNS:-64}
W=${1:-2}
. scripts/http-lib.sh
RPID=${PIDS[0]}
cpu() { awk '{print $14, $15}' "/proc/$1/stat"; } # user, system: clock ticks
kids() { awk '{print $16, $17}' "/proc/$$/stat"; } # waited-for children: wrk
start_daemon "$W"
redis-cli -p "$RPORT" config resetstat >/dev/null
r0=$(cpu "$RPID"); d0=$(cpu "$DPID"); w0=$(kids)
run_wrk "POST /v1/comments, $W worker(s)" "$URL" /v1/comments
r1=$(cpu "$RPID"); d1=$(cpu "$DPID"); w1=$(kids)
n=$(redis-cli -p "$RPORT" zcard modfilter:queue)
stats=$(redis-cli -p "$RPORT" info commandstats | tr -d '\r' | grep '^cmdstat_evalsha:' || true)
calls=$(echo "$stats" | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
usec=$(echo "$stats" | sed -n 's/.*,usec=\([0-9]*\),.*/\1/p')
hz=$(getconf CLK_TCK)
echo "  comments queued: $n; EVALSHA calls: ${calls:-0}, ${usec:-0} us in all"
redis-cli -p "$RPORT" info commandstats | tr -d '\r' | grep '^cmdstat_' |
    awk -F'[:=,]' -v n="$n" '$1 != "cmdstat_evalsha" && n > 0 {
    printf "  %-8s %8d calls, %6.2f per comment, %5.2f us per call, %5.2f us per comment (inside the script)\n", substr($1, 9), $3, $3 / n, $5 / $3, $5 / n }'
awk -v n="$n" -v c="${calls:-0}" -v u="${usec:-0}" -v hz="$hz" \
    -v t="$r0 $r1 $d0 $d1 $w0 $w1" 'BEGIN {
    if (n == 0 || c == 0) exit
    split(t, x, " ")
    printf "  comments per EVALSHA %.1f; EVALSHA %.1f us per call, %.2f us per comment\n", n / c, u / c, u / n
    k = 1e6 / hz / n
    printf "  CPU per comment (whole run, /proc), user + system: Redis %.1f + %.1f us, daemon %.1f + %.1f us, wrk %.1f + %.1f us\n",
        (x[3] - x[1]) * k, (x[4] - x[2]) * k, (x[7] - x[5]) * k, (x[8] - x[6]) * k,
        (x[11] - x[9]) * k, (x[12] - x[10]) * k
}'
stop_pid "$DPID"
