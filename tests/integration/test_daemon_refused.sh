#!/usr/bin/env bash
# Redis up but refusing writes (README, "Running in production"; REDIS.md,
# "Refused writes"): full under noeviction (OOM), a replica (READONLY), a
# failed RDB save (MISCONF).
#  1. Without a spool every comment gets 503, so /readyz answers 503
#     ("redis": false) with a warning naming Redis's error;
#     modfilter_redis_refusing_writes 1 and
#     modfilter_redis_refused_writes_total{error} count the comments.  Once
#     Redis takes writes again /readyz is back to 200 within seconds with
#     no comment sent (the daemon's probe write), and nothing was written
#     by the probe.
#  2. With a spool the comments are spooled: /readyz 200 with the warning
#     ("redis": false, "spool": true); drained once Redis has room, and
#     the warning goes.
source "$(dirname "$0")/lib.sh"
train_model
ALL=(--set server.workers=2 --set queue.verdicts=allow,review,reject)

metric() { # name (with labels): its value in /metrics ("" when absent)
    curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
post() { # id: the status; the body in $TMP/body
    curl -s -m 10 -o "$TMP/body" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        -d "{\"id\":\"$1\",\"text\":\"buy cheap pills now $1\"}" "$URL/v1/comments"
}
ready_is() { [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$URL/readyz")" = "$1" ]; }
refusal_warned() { curl -s -m 5 "$URL/readyz" | grep -q 'Redis refuses writes'; }
stored() { [ "$(rcli EXISTS "modfilter:item:$1")" = 1 ]; }
# fill: past maxmemory (test_daemon_maxmemory.sh), so every write is refused.
fill() {
    local used
    used=$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
    rcli CONFIG SET maxmemory $((used / 2)) >/dev/null
}
unfill() { rcli CONFIG SET maxmemory 0 >/dev/null; }
# refused NAME CODE PATTERN: a comment refused with 503, /readyz 503
# naming Redis's error, the gauge, and back once Redis takes writes
# (after the caller's fix, given as the command in FIX).
refused() {
    local name=$1 code=$2 pattern=$3 n
    n=$(metric "modfilter_redis_refused_writes_total{error=\"$code\"}")
    expect_eq "$name: submit" 503 "$(post "$name-1")"
    expect_eq "$name: not stored" 0 "$(rcli EXISTS "modfilter:item:$name-1")"
    r=$(req GET /readyz)
    expect_eq "$name: readyz" 503 "${r%% *}"
    expect_eq "$name: ready" false "$(json ready)"
    expect_eq "$name: redis" false "$(json redis)"
    expect_grep "$name: warning names Redis's error" "Redis refuses writes \\($pattern.*\\): comments that need queueing get 503" "$TMP/body"
    expect_eq "$name: gauge" 1 "$(metric modfilter_redis_refusing_writes)"
    expect_eq "$name: counted" $((n + 1)) "$(metric "modfilter_redis_refused_writes_total{error=\"$code\"}")"
    wait_for 5 grep -q "warning: redis: Redis refuses writes ($pattern" "$DLOG" ||
        { echo "FAIL: $name: no log line"; FAILS=$((FAILS+1)); }
    "${FIX[@]}" >/dev/null
    # No comment is sent: the daemon's own probe finds Redis writable.
    wait_for 5 ready_is 200 || { echo "FAIL: $name: readyz not back"; FAILS=$((FAILS+1)); }
    expect_eq "$name: gauge back" 0 "$(metric modfilter_redis_refusing_writes)"
    r=$(req GET /readyz)
    expect_eq "$name: redis back" true "$(json redis)"
    if grep -q 'refuses writes' "$TMP/body"; then echo "FAIL: $name: warning left"; FAILS=$((FAILS+1)); fi
    expect_eq "$name: submit again" 200 "$(post "$name-2")"
    expect_eq "$name: queued again" true "$(json queued)"
}

# ---- 1. no spool ------------------------------------------------------------
mkdir -p "$TMP/rdb"
start_redis "$(free_port)" --maxmemory-policy noeviction --dir "$TMP/rdb"
start_daemon "${ALL[@]}"
expect_eq "before: submit" 200 "$(post ok-0)"
expect_eq "before: gauge" 0 "$(metric modfilter_redis_refusing_writes)"
expect_eq "before: counter" 0 "$(metric 'modfilter_redis_refused_writes_total{error="OOM"}')"
expect_grep "gauge TYPE" '^# TYPE modfilter_redis_refusing_writes gauge$' <(curl -s "$URL/metrics")
expect_grep "counter TYPE" '^# TYPE modfilter_redis_refused_writes_total counter$' <(curl -s "$URL/metrics")

fill
FIX=(unfill)
refused oom OOM "OOM command not allowed when used memory > 'maxmemory'"
wait_for 5 grep -q 'redis: Redis takes writes again' "$DLOG" ||
    { echo "FAIL: no log line for the end"; FAILS=$((FAILS+1)); }

# A replica (of a master that is not there) refuses every write.
rcli REPLICAOF 127.0.0.1 "$(free_port)" >/dev/null
FIX=(rcli REPLICAOF NO ONE)
refused ro READONLY "READONLY You can't write against a read only replica"

# An RDB save that failed (its directory gone) stops writes.
rcli CONFIG SET save "3600 1" >/dev/null
rm -rf "$TMP/rdb"
rcli BGSAVE >/dev/null
wait_for 10 sh -c "redis-cli -p $REDIS_PORT INFO persistence | grep -q 'rdb_last_bgsave_status:err'" ||
    { echo "FAIL: the RDB save did not fail"; FAILS=$((FAILS+1)); }
FIX=(rcli CONFIG SET stop-writes-on-bgsave-error no)
refused misconf MISCONF "MISCONF "
expect_eq "the probe wrote nothing" 0 "$(rcli EXISTS modfilter:write-probe)"
# No more saves: a Redis whose save fails refuses SIGTERM.
rcli CONFIG SET save "" >/dev/null
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"

# ---- 2. with a spool --------------------------------------------------------
start_daemon "${ALL[@]}" --set spool.path="$TMP/spool"
fill
expect_eq "sp-1: status" 200 "$(post sp-1)"
expect_eq "sp-1: spooled" true "$(json spooled)"
r=$(req GET /readyz)
expect_eq "spool: readyz" 200 "${r%% *}"
expect_eq "spool: ready" true "$(json ready)"
expect_eq "spool: redis" false "$(json redis)"
expect_eq "spool: spool" true "$(json spool)"
expect_grep "spool: warning" "Redis refuses writes \\(OOM command not allowed.*\\): comments that need queueing go to the spool" "$TMP/body"
expect_eq "spool: gauge" 1 "$(metric modfilter_redis_refusing_writes)"
unfill
wait_for 15 stored sp-1 || { echo "FAIL: sp-1 never reached Redis"; FAILS=$((FAILS+1)); }
wait_for 5 eval '! refusal_warned' || { echo "FAIL: spool: warning left"; FAILS=$((FAILS+1)); }
r=$(req GET /readyz)
expect_eq "spool: redis back" true "$(json redis)"
stop_daemon; expect_eq "exit status (spool)" 0 "$STOP_RC"
stop_redis
finish
