#!/usr/bin/env bash
# Redis absent at start, killed mid-run, slow, and back again: 503 with
# Retry-After and never a false "queued": true; recovery without restart.
# A client that leaves before the Redis acknowledgement crashes nothing.
source "$(dirname "$0")/lib.sh"
train_model
REDIS_PORT=$(free_port)
start_daemon --set server.workers=2
C='{"text":"Check out my channel for free iPhone http://bit.ly/x"}'
submit_503() { # name
    curl -s -m 10 -D "$TMP/h" -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$C" "$URL/v1/comments" > "$TMP/code"
    expect_eq "$1: status" 503 "$(cat "$TMP/code")"
    expect_eq "$1: code" unavailable "$(json error.code)"
    expect_grep "$1: Retry-After" '^Retry-After: [0-9]+' "$TMP/h"
    if grep -q '"queued"' "$TMP/body"; then echo "FAIL: $1: a queued field in a 503"; FAILS=$((FAILS+1)); fi
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; }

# no Redis at start
r=$(req GET /readyz); expect_eq "readyz without redis" 503 "${r%% *}"
expect_eq "readyz redis false" false "$(json redis)"
r=$(req GET /healthz); expect_eq "healthz without redis" 200 "${r%% *}"
submit_503 "redis absent"
r=$(req POST /v1/score "$C"); expect_eq "score without redis" 200 "${r%% *}"

# Redis comes up: the daemon connects by itself
start_redis "$REDIS_PORT"
wait_for 20 ready || { echo "FAIL: not ready after redis started"; FAILS=$((FAILS+1)); }
r=$(req POST /v1/comments "$C"); expect_eq "after redis start" 200 "${r%% *}"
expect_eq "after redis start queued" true "$(json queued)"

# Redis killed mid-run
kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=
for i in 1 2 3; do submit_503 "redis killed $i"; done
r=$(req GET /readyz); expect_eq "readyz after kill" 503 "${r%% *}"
curl -s "$URL/metrics" > "$TMP/metrics"
expect_grep "redis errors counted" '^modfilter_redis_errors_total [1-9]' "$TMP/metrics"
expect_grep "503 counted" '^modfilter_requests_total\{route="comments",status="503"\} [1-9]' "$TMP/metrics"

# back again
start_redis "$REDIS_PORT"
wait_for 20 ready || { echo "FAIL: not ready after redis restart"; FAILS=$((FAILS+1)); }
r=$(req POST /v1/comments '{"id":"back-1","text":"buy cheap pills"}')
expect_eq "after restart" 200 "${r%% *}"
expect_eq "after restart queued" true "$(json queued)"
expect_eq "after restart stored" 1 "$(rcli EXISTS modfilter:item:back-1)"

# Redis too slow (longer than redis.timeout_ms): 503, not a false queued
rcli DEBUG SLEEP 1.6 >/dev/null &
SLEEPER=$!
sleep 0.1
submit_503 "redis slow"
wait "$SLEEPER"
wait_for 20 ready

# clients that leave before the acknowledgement
rcli DEBUG SLEEP 0.7 >/dev/null &
SLEEPER=$!
sleep 0.1
for i in 1 2 3 4 5 6; do
    curl -s -m 0.2 -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"id\":\"gone-$i\",\"text\":\"buy cheap pills\"}" "$URL/v1/comments" &
done
python3 - "$PORT" <<'PY'
import socket, sys
for i in range(6):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    body = ('{"id":"gone-py-%d","text":"cheap pills"}' % i).encode()
    s.sendall(b"POST /v1/comments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()   # reset, before Redis answers
PY
wait "$SLEEPER"
sleep 0.5
r=$(req GET /healthz); expect_eq "alive after clients left" 200 "${r%% *}"
r=$(req POST /v1/comments '{"id":"after-gone","text":"buy cheap pills"}')
expect_eq "serving after clients left" 200 "${r%% *}"
expect_eq "gone clients' comments stored" 6 "$(rcli --scan --pattern 'modfilter:item:gone-[0-9]*' | wc -l)"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
