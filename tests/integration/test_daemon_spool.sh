#!/usr/bin/env bash
# The spool: acknowledged comments survive Redis being away and the daemon
# being killed, and reach Redis exactly once.
#  1. Redis stopped: queued + spooled; Redis back: all drained, once each.
#  2. kill -9 with records in the spool (and a torn record at its tail); a
#     new daemon on the same spool drains them all.
#  3. spool.max_bytes tiny: 503 + Retry-After once full, never a false ack;
#     a file where the spool directory should be: the daemon does not start.
#  4. Redis (appendonly, appendfsync always) killed with SIGKILL under a
#     sustained load of 2,000 comments and restarted on its data: every
#     acknowledged id in Redis once.
source "$(dirname "$0")/lib.sh"
train_model
SP="$TMP/spool"
ALL=(--set queue.verdicts=allow,review,reject --set server.workers=2)

metric() { # name: its value in /metrics
    curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
zcard() { rcli ZCARD modfilter:queue; }
zcard_is() { [ "$(zcard)" = "$1" ]; }
zcard_ge() { [ "$(zcard)" -ge "$1" ]; }
backlog_is() { [ "$(metric modfilter_spool_records)" = "$1" ]; }
acked_ge() { [ "$(cat "$TMP/load.n" 2>/dev/null || echo 0)" -ge "$1" ]; }
qs() { # "queued spooled" of the reply in $TMP/body (compact JSON; no python)
    local q=absent s=absent
    grep -q '"queued":true' "$TMP/body" && q=true
    grep -q '"queued":false' "$TMP/body" && q=false
    grep -q '"spooled":true' "$TMP/body" && s=true
    echo "$q $s"
}
post() { # id text: the status; the body in $TMP/body, headers in $TMP/h
    curl -s -m 10 -D "$TMP/h" -o "$TMP/body" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        -d "{\"id\":\"$1\",\"text\":\"$2\"}" "$URL/v1/comments"
}

# ---- 1. Redis stopped, then back -----------------------------------------
REDIS_PORT=$(free_port)
start_daemon --set spool.path="$SP" "${ALL[@]}"
r=$(req GET /readyz)
expect_eq "readyz with the spool only" 200 "${r%% *}"
expect_eq "readyz redis" false "$(json redis)"
expect_eq "readyz spool" true "$(json spool)"
expect_eq "spool dir mode" 700 "$(stat -c %a "$SP")"
for i in $(seq 1 20); do
    code=$(post "s1-$i" "buy cheap pills number $i")
    expect_eq "s1-$i" "200 true true" "$code $(qs)"
done
keys=$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))))' "$TMP/body")
expect_eq "reply keys" "id,scores,unsure,verdict,queued,spooled,lang,reasons" "$keys"
r=$(req POST /v1/comments '{"text":"a comment without an id"}')
expect_eq "generated id spooled" true "$(json spooled)"
GEN=$(json id)
# the same id again, while the spool holds it: 503, retry later.  Neither
# spooled twice nor, once Redis is back but before the drainer ran, stored
# in the spooled comment's place (which the drainer would then drop as
# already there).
code=$(post s1-1 "buy cheap pills number 1, another text")
expect_eq "resubmitted while spooled" 503 "$code"
expect_grep "resubmitted while spooled: why" 'in the local spool' "$TMP/body"
expect_eq "spool records" 21 "$(metric modfilter_spool_records)"
expect_eq "spool appended" 21 "$(metric modfilter_spool_appended_total)"
expect_eq "segment files" 1 "$(ls "$SP" | grep -c '^seg-')"
r=$(req GET /readyz)
expect_grep "readyz warns of the backlog" 'wait for Redis' "$TMP/body"
start_redis "$REDIS_PORT"
wait_for 15 zcard_is 21 ||
    { echo "FAIL: not drained: ZCARD $(zcard)"; FAILS=$((FAILS+1)); }
wait_for 5 backlog_is 0 ||
    { echo "FAIL: backlog left"; FAILS=$((FAILS+1)); }
expect_eq "queue length once drained" 21 "$(zcard)"
for i in $(seq 1 20); do
    [ "$(rcli ZSCORE modfilter:queue "s1-$i")" ] || { echo "FAIL: s1-$i not queued"; FAILS=$((FAILS+1)); }
done
expect_eq "generated id queued" 1 "$(rcli EXISTS "modfilter:item:$GEN")"
rcli HGET modfilter:item:s1-7 record > "$TMP/rec"
expect_grep "spooled record stored whole" '"text":"buy cheap pills number 7".*"received_at"' "$TMP/rec"
expect_eq "drained segments removed" 0 "$(ls "$SP" | grep -c '^seg-')"
redis_ready() { curl -s "$URL/readyz" | grep -q '"redis": *true'; }
wait_for 10 redis_ready # every worker's own connection, not just the drainer's
code=$(post s1-live "buy cheap pills live")
expect_eq "live after drain" 200 "$code"
expect_eq "live: queued, not spooled" "true absent" "$(qs)"

# Redis slower than redis.timeout_ms: spooled; Redis then runs the late
# submit and the drainer finds the id there (queued once).
rcli DEBUG SLEEP 1.5 >/dev/null &
SLEEPER=$!
sleep 0.1
code=$(post s1-slow "buy cheap pills slowly")
expect_eq "slow redis: spooled" "200 true true" "$code $(qs)"
wait "$SLEEPER"
wait_for 10 backlog_is 0 || { echo "FAIL: slow one not drained"; FAILS=$((FAILS+1)); }
expect_eq "slow redis: once" 23 "$(zcard)"
expect_eq "slow redis: one item" 1 "$(rcli --scan --pattern 'modfilter:item:s1-slow' | wc -l)"
expect_grep "slow redis: Redis had stored it late" 'drained, 1 record\(s\) handed to Redis \(1 of them it had already\)' "$DLOG"

echo "section 2 at ${SECONDS}s"
# ---- 2. kill -9 with a backlog; a new daemon resumes -------------------------
stop_redis
for i in $(seq 1 10); do
    code=$(post "k-$i" "cheap pills $i")
    expect_eq "k-$i" "200 true true" "$code $(qs)"
done
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; DPID=
seg=$(ls "$SP"/seg-* | tail -1)
printf '\365SR\000\120\000\000\000torn' >> "$seg" # a record cut by the crash
start_redis "$REDIS_PORT"
# As if an earlier drain had stored k-3 and died before its checkpoint:
rcli HSET modfilter:item:k-3 record '{"id":"k-3","earlier":true}' state queued \
    received_ms 1 urgency 0 >/dev/null
rcli ZADD modfilter:queue 1 k-3 >/dev/null; rcli ZADD modfilter:queue:urgent 0 k-3 >/dev/null
start_daemon --set spool.path="$SP" "${ALL[@]}"
wait_for 15 zcard_is 10 ||
    { echo "FAIL: not resumed: ZCARD $(zcard)"; FAILS=$((FAILS+1)); }
wait_for 5 backlog_is 0
expect_eq "resumed: each once" 10 "$(rcli --scan --pattern 'modfilter:item:k-*' | wc -l)"
expect_grep "torn tail logged" 'torn or damaged tail at offset' "$DLOG"
expect_eq "k-3 kept, not queued twice" '{"id":"k-3","earlier":true}' "$(rcli HGET modfilter:item:k-3 record)"
stop_daemon
expect_eq "exit status" 0 "$STOP_RC"
start_daemon --set spool.path="$SP" "${ALL[@]}" # nothing is sent twice
sleep 0.5
expect_eq "after a second restart" 10 "$(zcard)"
expect_eq "nothing left" 0 "$(metric modfilter_spool_records)"
stop_daemon

# ---- 2b. an id in the spool posted again with a verdict not queued -------
# Its stored result cannot be read yet: 503, never the fresh score; once
# drained, the stored result.  An id the daemon cannot look up (Redis away,
# not in the spool) gets the fresh score (README, "Posting an id again").
stop_redis
start_daemon --set spool.path="$SP" "${ALL[@]}"
code=$(post p-1 "cheap pills p")
expect_eq "p-1 spooled" "200 true true" "$code $(qs)"
stop_daemon
start_daemon --set spool.path="$SP" --set queue.verdicts=reject --set server.workers=2
code=$(post p-1 "cheap pills p") # found in the spool at open
expect_eq "spooled id again, verdict not queued: 503" 503 "$code"
expect_grep "spooled id again: Retry-After" '^Retry-After: ' "$TMP/h"
expect_grep "spooled id again: why" 'in the local spool' "$TMP/body"
code=$(post p-2 "cheap pills p2")
expect_eq "unknown id, Redis away: the fresh score" "200 false absent" "$code $(qs)"
start_redis "$REDIS_PORT"
wait_for 15 backlog_is 0 || { echo "FAIL: p-1 not drained"; FAILS=$((FAILS+1)); }
wait_for 10 redis_ready
code=$(post p-1 "cheap pills p")
expect_eq "drained id again: the stored result" "200 true absent" "$code $(qs)"
expect_eq "drained id again: once" 1 "$(rcli ZSCORE modfilter:queue p-1 | grep -c .)"
stop_daemon

echo "section 3 at ${SECONDS}s"
# ---- 3. a full spool; an unusable spool ---------------------------------------
stop_redis
start_daemon --set spool.path="$TMP/small" --set spool.max_bytes=4000 "${ALL[@]}"
acked=0 refused=0
for i in $(seq 1 20); do
    code=$(post "f-$i" "cheap pills $i")
    if [ "$code" = 200 ]; then
        acked=$((acked + 1))
        expect_eq "f-$i acked means spooled" "true true" "$(qs)"
    else
        refused=$((refused + 1))
        expect_eq "f-$i refused" "503 absent absent" "$code $(qs)"
        expect_grep "f-$i code" '"code":"unavailable"' "$TMP/body"
        expect_grep "f-$i Retry-After" '^Retry-After: [0-9]+' "$TMP/h"
    fi
done
[ "$acked" -ge 2 ] && [ "$refused" -ge 1 ] ||
    { echo "FAIL: acked $acked refused $refused"; FAILS=$((FAILS+1)); }
expect_grep "full logged" 'is full' "$DLOG"
r=$(req GET /readyz)
expect_eq "readyz when full and no redis" "503 false" "${r%% *} $(json spool)"
start_redis "$REDIS_PORT"
wait_for 15 zcard_is "$acked" ||
    { echo "FAIL: small spool drained: ZCARD $(zcard), acked $acked"; FAILS=$((FAILS+1)); }
stop_daemon
: > "$TMP/notadir"
timeout 20 "$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" --set server.listen=127.0.0.1:0 \
    --set server.port_file="$TMP/failed.port" --set spool.path="$TMP/notadir" > "$TMP/out" 2>&1
expect_eq "unusable spool: exit status" 1 "$?"
expect_grep "unusable spool: message" "error: spool.path $TMP/notadir" "$TMP/out"
expect_eq "failed start: no port file left pointing at nothing" no \
    "$([ -e "$TMP/failed.port" ] && echo yes || echo no)"
start_daemon --set spool.path="$SP" "${ALL[@]}" # one daemon per spool
timeout 20 "$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" --set server.listen=127.0.0.1:0 \
    --set model.state_dir="$TMP/state2" --set spool.path="$SP" > "$TMP/out" 2>&1
expect_eq "spool in use: exit status" 1 "$?"
expect_grep "spool in use: message" "error: spool.path $SP: in use by another modfilterd" "$TMP/out"
stop_daemon

echo "section 4 at ${SECONDS}s"
# ---- 4. Redis killed under load -----------------------------------------------
stop_redis
AOF="$TMP/aof"; mkdir -p "$AOF"
start_redis_aof() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync always --dir "$AOF" --logfile "$AOF/redis.log" &
    REDIS_PID=$!
    wait_for 10 redis-cli -p "$REDIS_PORT" ping || { echo "redis did not start"; exit 1; }
}
start_redis_aof
rm -rf "$SP"
start_daemon --set spool.path="$SP" "${ALL[@]}"
python3 - "$PORT" "$TMP/load" <<'PY' &
import http.client, json, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
acked, other, lock = [], [], threading.Lock()
def run(t):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(t, 2000, 8):
        cid = "L-%d" % i
        body = json.dumps({"id": cid, "text": "cheap pills and free money %d" % i})
        try:
            c.request("POST", "/v1/comments", body, {"Content-Type": "application/json"})
            r = c.getresponse(); data = r.read()
            ok = r.status == 200 and json.loads(data).get("queued") is True
        except Exception as e:
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            ok, r = False, None
        with lock:
            (acked if ok else other).append(cid if ok else "%s %s" % (cid, r and r.status))
            if len(acked) % 50 == 0:
                open(out + ".n", "w").write(str(len(acked)))
ts = [threading.Thread(target=run, args=(t,)) for t in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
open(out, "w").write("\n".join(acked) + "\n")
open(out + ".other", "w").write("\n".join(other) + ("\n" if other else ""))
PY
LOAD=$!
wait_for 20 acked_ge 500
kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=
sleep 1
start_redis_aof # the same data
wait "$LOAD"
n=$(wc -l < "$TMP/load")
expect_eq "every comment acknowledged" 2000 "$n"
expect_eq "no refusals" 0 "$(wc -l < "$TMP/load.other")"
wait_for 20 backlog_is 0 ||
    { echo "FAIL: spool not drained"; FAILS=$((FAILS+1)); }
wait_for 10 zcard_ge "$n"
rcli ZRANGE modfilter:queue 0 -1 | sort > "$TMP/inredis"
sort "$TMP/load" > "$TMP/acked"
expect_eq "acknowledged ids in Redis, once each" "$n" "$(comm -12 "$TMP/acked" "$TMP/inredis" | wc -l)"
expect_eq "queue length" "$n" "$(zcard)"
expect_eq "item hashes" "$n" "$(rcli --scan --pattern 'modfilter:item:L-*' | wc -l)"
echo "load: spooled $(metric modfilter_spool_appended_total) of $n while Redis was away"
stop_daemon
expect_eq "exit status after load" 0 "$STOP_RC"
echo "done at ${SECONDS}s"
finish
