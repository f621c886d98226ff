#!/usr/bin/env bash
# Redis with maxmemory (daemon/REDIS.md, "Eviction"):
#  1. maxmemory-policy allkeys-lru may evict queued comments: one error
#     line per connection, modfilter_redis_evicting 1 and a /readyz
#     warning; /readyz stays 200 and comments are still stored.  noeviction (or allkeys-* without
#     maxmemory) after a reconnection: 0.  INFO refused (an ACL user
#     without it): a warning, no gauge, comments still queued.
#     A policy changed with CONFIG SET while connected is seen at the
#     next check (redis.check_interval_s; 1 s here): the gauge, the error
#     line (once, not at every check) and the /readyz warning come and go
#     without a reconnection.
#  2. noeviction and Redis full: Redis refuses writes (OOM), so 503
#     with Retry-After and nothing stored, never "queued": true; with a
#     spool, "spooled": true, and the comment reaches Redis once it has
#     room again.
source "$(dirname "$0")/lib.sh"
train_model
ALL=(--set server.workers=2 --set queue.verdicts=allow,review,reject)

metric() { # name: its value in /metrics ("" when absent)
    curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
lines() { grep -c -- "$1" "$DLOG"; }
lines_are() { [ "$(lines "$1")" = "$2" ]; }
post() { # id: the status; the body in $TMP/body, headers in $TMP/h
    curl -s -m 10 -D "$TMP/h" -o "$TMP/body" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        -d "{\"id\":\"$1\",\"text\":\"buy cheap pills now $1\"}" "$URL/v1/comments"
}
# reconnect: drop the daemon's connections; wait until they are back.
reconnect() {
    local n; n=$(lines 'redis: connected')
    rcli CLIENT KILL TYPE normal >/dev/null
    wait_for 10 lines_are 'redis: connected' $((n + 1)) ||
        { echo "FAIL: no reconnection"; FAILS=$((FAILS+1)); }
    wait_for 10 curl -sf "$URL/readyz"
}
ERR='error: redis: maxmemory-policy is allkeys-lru with maxmemory 104857600 bytes: Redis may evict queued comments.*set maxmemory-policy noeviction'

# ---- 1. an evicting policy is reported, once per connection ---------------
start_redis "$(free_port)" --maxmemory 100mb --maxmemory-policy allkeys-lru
start_daemon "${ALL[@]}"
wait_for 10 metric_is modfilter_redis_evicting 1 ||
    { echo "FAIL: evicting gauge: [$(metric modfilter_redis_evicting)]"; FAILS=$((FAILS+1)); }
expect_grep "gauge HELP" '^# HELP modfilter_redis_evicting ' <(curl -s "$URL/metrics")
expect_grep "gauge TYPE" '^# TYPE modfilter_redis_evicting gauge$' <(curl -s "$URL/metrics")
expect_eq "one error line for two workers" 1 "$(lines "$ERR")"
r=$(req GET /readyz)
expect_eq "readyz while evicting" 200 "${r%% *}"
expect_grep "readyz warns" 'maxmemory-policy may evict queued comments: set maxmemory-policy noeviction' "$TMP/body"
expect_eq "submit while evicting" 200 "$(post ev-1)"
expect_eq "queued while evicting" true "$(json queued)"
expect_eq "stored while evicting" 1 "$(rcli EXISTS modfilter:item:ev-1)"

rcli CONFIG SET maxmemory-policy noeviction >/dev/null
reconnect
wait_for 10 metric_is modfilter_redis_evicting 0 ||
    { echo "FAIL: noeviction gauge: [$(metric modfilter_redis_evicting)]"; FAILS=$((FAILS+1)); }
expect_eq "no new error line with noeviction" 1 "$(lines "$ERR")"
r=$(req GET /readyz)
if grep -q maxmemory "$TMP/body"; then echo "FAIL: readyz warns with noeviction"; FAILS=$((FAILS+1)); fi

rcli CONFIG SET maxmemory-policy allkeys-lru >/dev/null
reconnect
wait_for 10 metric_is modfilter_redis_evicting 1 ||
    { echo "FAIL: evicting gauge again: [$(metric modfilter_redis_evicting)]"; FAILS=$((FAILS+1)); }
wait_for 5 lines_are "$ERR" 2 ||
    { echo "FAIL: no error line at the new connection: $(lines "$ERR")"; FAILS=$((FAILS+1)); }

rcli CONFIG SET maxmemory 0 >/dev/null # allkeys-lru, but no limit
rcli CONFIG SET maxmemory-policy allkeys-random >/dev/null
reconnect
wait_for 10 metric_is modfilter_redis_evicting 0 ||
    { echo "FAIL: no maxmemory gauge: [$(metric modfilter_redis_evicting)]"; FAILS=$((FAILS+1)); }
wait_for 5 grep -q 'warning: redis: maxmemory-policy is allkeys-random: once maxmemory is set, Redis may evict queued comments; set maxmemory-policy noeviction' "$DLOG" ||
    { echo "FAIL: no warning for allkeys-random without maxmemory"; FAILS=$((FAILS+1)); }
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"

# INFO refused: a warning, no gauge, and the daemon carries on.
rcli ACL SETUSER mf on '>mf-password' '~*' '&*' +@all -info >/dev/null
rcli CONFIG SET maxmemory 100mb >/dev/null
start_daemon "${ALL[@]}" --set redis.url="redis://mf:mf-password@127.0.0.1:$REDIS_PORT/0"
wait_for 10 grep -q 'warning: redis: cannot tell whether Redis may evict queued comments (Redis error: NOPERM.*); carrying on' "$DLOG" ||
    { echo "FAIL: no warning for a refused INFO"; FAILS=$((FAILS+1)); }
expect_eq "no gauge while unknown" "" "$(metric modfilter_redis_evicting)"
expect_eq "submit without INFO" 200 "$(post ev-2)"
expect_eq "queued without INFO" true "$(json queued)"
expect_eq "stored without INFO" 1 "$(rcli EXISTS modfilter:item:ev-2)"
stop_daemon; expect_eq "exit status (acl)" 0 "$STOP_RC"
stop_redis

# ---- 1b. the policy changed while connected ----------------------------------
start_redis "$(free_port)" --maxmemory 100mb --maxmemory-policy noeviction
start_daemon "${ALL[@]}" --set redis.check_interval_s=1
wait_for 10 metric_is modfilter_redis_evicting 0 ||
    { echo "FAIL: runtime: gauge at start: [$(metric modfilter_redis_evicting)]"; FAILS=$((FAILS+1)); }
conns=$(lines 'redis: connected') said=$(lines "$ERR")
rcli CONFIG SET maxmemory-policy allkeys-lru >/dev/null
wait_for 5 metric_is modfilter_redis_evicting 1 ||
    { echo "FAIL: runtime: allkeys-lru not seen: [$(metric modfilter_redis_evicting)]"; FAILS=$((FAILS+1)); }
expect_eq "runtime: the error line" $((said + 1)) "$(lines "$ERR")"
r=$(req GET /readyz)
expect_eq "runtime: readyz status" 200 "${r%% *}"
expect_grep "runtime: readyz warns" 'maxmemory-policy may evict queued comments' "$TMP/body"
sleep 2.5 # two more checks, same answer: no more lines
expect_eq "runtime: said once" $((said + 1)) "$(lines "$ERR")"
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
wait_for 5 metric_is modfilter_redis_evicting 0 ||
    { echo "FAIL: runtime: noeviction not seen: [$(metric modfilter_redis_evicting)]"; FAILS=$((FAILS+1)); }
wait_for 5 grep -q 'redis: maxmemory-policy is now noeviction: Redis no longer evicts queued comments' "$DLOG" ||
    { echo "FAIL: runtime: no line for noeviction"; FAILS=$((FAILS+1)); }
r=$(req GET /readyz)
if grep -q maxmemory "$TMP/body"; then echo "FAIL: runtime: readyz still warns"; FAILS=$((FAILS+1)); fi
expect_eq "runtime: no reconnection" "$conns" "$(lines 'redis: connected')"
stop_daemon; expect_eq "exit status (runtime)" 0 "$STOP_RC"
stop_redis

# ---- 2. noeviction, Redis full ----------------------------------------------
# fill: Redis past its maxmemory (as when the data grew beyond it; a Redis
# filled to just under the limit still takes a small write, and does
# store it), so that it refuses every write.
fill() {
    local used
    used=$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }')
    rcli CONFIG SET maxmemory $((used / 2)) >/dev/null
    rcli SET probe x > "$TMP/probe"
    expect_grep "Redis full refuses writes" '^OOM ' "$TMP/probe"
}
unfill() { rcli CONFIG SET maxmemory 0 >/dev/null; }
stored() { [ "$(rcli EXISTS "modfilter:item:$1")" = 1 ] && [ -n "$(rcli ZSCORE modfilter:queue "$1")" ]; }

start_redis "$(free_port)" --maxmemory-policy noeviction
start_daemon "${ALL[@]}"
wait_for 10 metric_is modfilter_redis_evicting 0
expect_eq "before full" 200 "$(post full-0)"
expect_eq "before full: queued" true "$(json queued)"
fill
errs=$(metric modfilter_redis_errors_total)
refused=$(metric 'modfilter_redis_refused_writes_total{error="OOM"}')
for i in 1 2 3; do
    expect_eq "full-$i: status" 503 "$(post "full-$i")"
    expect_eq "full-$i: code" unavailable "$(json error.code)"
    expect_grep "full-$i: Retry-After" '^Retry-After: [0-9]+' "$TMP/h"
    if grep -q '"queued"' "$TMP/body"; then echo "FAIL: full-$i: a queued field in a 503"; FAILS=$((FAILS+1)); fi
    expect_eq "full-$i: not stored" 0 "$(rcli EXISTS "modfilter:item:full-$i")"
    expect_eq "full-$i: not queued" "" "$(rcli ZSCORE modfilter:queue "full-$i")"
done
# each refused comment is an error; so is each of the daemon's probe
# writes while Redis refuses (one a second)
n=$(metric modfilter_redis_errors_total)
[ "$n" -ge $((errs + 3)) ] || { echo "FAIL: errors counted: $n < $errs + 3"; FAILS=$((FAILS+1)); }
expect_eq "refusals counted" $((refused + 3)) "$(metric 'modfilter_redis_refused_writes_total{error="OOM"}')"
# named in the log once (not three times): the error text, what happens
expect_grep "the refusal logged" 'a comment was not queued \(Redis error: OOM command not allowed' "$DLOG"
expect_eq "logged once per 10 s (2 workers)" 1 "$(grep -c 'a comment was not queued' "$DLOG")"
r=$(req POST /v1/score '{"text":"buy cheap pills"}')
expect_eq "score while full" 200 "${r%% *}"
unfill
expect_eq "room again" 200 "$(post full-4)"
expect_eq "room again: queued" true "$(json queued)"
expect_eq "room again: stored" 1 "$(rcli EXISTS modfilter:item:full-4)"
stop_daemon; expect_eq "exit status (full)" 0 "$STOP_RC"

# with a spool: spooled while full, in Redis once it has room
start_daemon "${ALL[@]}" --set spool.path="$TMP/spool"
redis_ready() { curl -s "$URL/readyz" | grep -q '"redis": *true'; }
wait_for 10 redis_ready # spooled below for Redis being full, not away
fill
for i in 1 2 3; do
    code=$(post "sp-$i")
    expect_eq "sp-$i: status" 200 "$code"
    expect_eq "sp-$i: queued" true "$(json queued)"
    expect_eq "sp-$i: spooled" true "$(json spooled)"
    expect_eq "sp-$i: not in Redis yet" 0 "$(rcli EXISTS "modfilter:item:sp-$i")"
done
expect_eq "spool backlog" 3 "$(metric modfilter_spool_records)"
unfill
for i in 1 2 3; do
    wait_for 15 stored "sp-$i" || { echo "FAIL: sp-$i never reached Redis"; FAILS=$((FAILS+1)); }
done
wait_for 5 metric_is modfilter_spool_records 0 ||
    { echo "FAIL: spool backlog left: $(metric modfilter_spool_records)"; FAILS=$((FAILS+1)); }
stop_daemon; expect_eq "exit status (spool)" 0 "$STOP_RC"
finish
