#!/usr/bin/env bash
# make load: POST /v1/comments for DURATION seconds (default 60) at CONNS
# connections (default 64) against modfilterd with 2 workers, every comment
# queued; reports throughput, p50/p99, errors (must be 0), resident memory
# at start and end (must not grow), and checks Redis against the
# acknowledgements: every acknowledged comment is there, and the only others
# are the ones in flight when wrk stopped (at most one per connection: sent,
# stored, but their replies cut off).  Exit status 1 when a check fails.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
D=${DATASETS:-../shared/datasets}
DURATION=${DURATION:-60}
CONNS=${CONNS:-64}
COUNT_ACKS=1
. scripts/http-lib.sh

start_daemon 2
rss() { awk '/VmRSS/ {print $2}' "/proc/$DPID/status"; }
# warm up (caches, allocator) before the first reading
wrk -t2 -c"$CONNS" -d3s -s "$T/post.lua" "$URL" -- /v1/comments >/dev/null 2>&1
redis-cli -p "$RPORT" flushall >/dev/null
rss0=$(rss)
out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$T/post.lua" "$URL" -- /v1/comments 2>&1)
rss1=$(rss)
acked=$(cat "$T/acked")
queued=$(redis-cli -p "$RPORT" zcard modfilter:queue)
errors=$(echo "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
echo "$out" | grep -E "Requests/sec|  50%|  99%|requests in"
printf 'acknowledged %s, in Redis %s, errors %s, RSS %.1f -> %.1f MiB\n' \
    "$acked" "$queued" "$errors" "$(echo "$rss0 / 1024" | bc -l)" "$(echo "$rss1 / 1024" | bc -l)"
status=0
[ "$errors" -eq 0 ] || { echo "FAIL: errors"; status=1; }
[ "$queued" -ge "$acked" ] || { echo "FAIL: acknowledged comments missing in Redis"; status=1; }
[ "$queued" -le $((acked + CONNS)) ] || { echo "FAIL: more in Redis than acknowledged and in flight"; status=1; }
# allow 10% (allocator arenas settle) before calling it growth
[ "$rss1" -le $((rss0 + rss0 / 10)) ] || { echo "FAIL: resident memory grew"; status=1; }
exit $status
