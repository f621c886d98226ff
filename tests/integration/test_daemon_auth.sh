#!/usr/bin/env bash
# Bearer tokens and roles; the Unix socket; loopback-only submit without
# tokens.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
SUB=submit-token-0123456789 MOD=moderator-token-0123456789
printf '# submit tokens\nblog2:file-token-0123456789\n\nblog3:other-file-token-99\n' > "$TMP/submit.tokens"
start_daemon --set server.workers=1 --set auth.submit_tokens="blog:$SUB" \
    --set auth.moderator_tokens="alice:$MOD" \
    --set auth.submit_tokens_file="$TMP/submit.tokens" \
    --set server.socket="$TMP/sock"
B='{"text":"hello there"}'
st() { local r; r=$(req "$@"); echo "${r%% *}"; }
expect_eq "no token" 401 "$(st POST /v1/score "$B")"
expect_eq "401 code" unauthorized "$(json error.code)"
curl -s -D "$TMP/h" -o /dev/null -H 'Content-Type: application/json' -d "$B" "$URL/v1/score"
expect_grep "WWW-Authenticate" '^WWW-Authenticate: Bearer' "$TMP/h"
expect_eq "unknown token" 401 "$(st POST /v1/score "$B" -H 'Authorization: Bearer nope-nope-nope')"
expect_eq "unknown token message" "unknown token" "$(json error.message)"
expect_eq "token prefix" 401 "$(st POST /v1/score "$B" -H "Authorization: Bearer ${SUB:0:10}")"
expect_eq "token longer" 401 "$(st POST /v1/score "$B" -H "Authorization: Bearer ${SUB}x")"
expect_eq "not bearer" 401 "$(st POST /v1/score "$B" -H "Authorization: Basic $SUB")"
expect_eq "not bearer message" 'the Authorization header must be "Bearer TOKEN": no other scheme is taken' "$(json error.message)"
expect_eq "empty bearer" 401 "$(st POST /v1/score "$B" -H "Authorization: Bearer  ")"
expect_eq "empty bearer message" "empty Bearer token" "$(json error.message)"
expect_eq "moderator on submit" 403 "$(st POST /v1/score "$B" -H "Authorization: Bearer $MOD")"
expect_eq "403 code" forbidden "$(json error.code)"
expect_eq "submit token" 200 "$(st POST /v1/score "$B" -H "Authorization: Bearer $SUB")"
expect_eq "file token" 200 "$(st POST /v1/comments "$B" -H "Authorization: Bearer file-token-0123456789")"
expect_eq "second file token" 200 "$(st POST /v1/score "$B" -H "Authorization: Bearer other-file-token-99")"
expect_eq "lower-case bearer" 200 "$(st POST /v1/score "$B" -H "Authorization: bearer $SUB")"
expect_eq "moderator route, no token" 401 "$(st GET /v1/queue)"
expect_eq "moderator route, submit token" 403 "$(st GET /v1/queue "" -H "Authorization: Bearer $SUB")"
expect_eq "moderator route, moderator token" 200 "$(st GET /v1/queue "" -H "Authorization: Bearer $MOD")"
expect_eq "metrics on loopback" 200 "$(st GET /metrics)"
expect_eq "healthz open" 200 "$(st GET /healthz)"
# the Unix socket serves the same API and needs the same tokens
r=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$TMP/sock" \
    -H 'Content-Type: application/json' -d "$B" http://localhost/v1/score)
expect_eq "socket without token" 401 "$r"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$TMP/sock" \
    -H "Authorization: Bearer $SUB" -H 'Content-Type: application/json' -d "$B" http://localhost/v1/score)
expect_eq "socket with token" 200 "$r"
r=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$TMP/sock" http://localhost/metrics)
expect_eq "socket metrics open" 200 "$r"
if grep -q -- "$SUB\|$MOD\|file-token" "$DLOG"; then echo "FAIL: a token in the log"; FAILS=$((FAILS+1)); fi
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
test -e "$TMP/sock" && { echo "FAIL: socket left behind"; FAILS=$((FAILS+1)); }

# without submit tokens: loopback and socket clients only, and the log says so
start_daemon --set server.workers=1 --set server.socket="$TMP/sock"
# (logged with the start-up line, after the port file is written)
wait_for 10 grep -q 'submit_tokens is empty' "$DLOG"
expect_grep "start-up note" 'submit_tokens is empty' "$DLOG"
expect_eq "loopback without tokens" 200 "$(st POST /v1/comments "$B")"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$TMP/sock" \
    -H 'Content-Type: application/json' -d "$B" http://localhost/v1/comments)
expect_eq "socket without tokens" 200 "$r"
expect_eq "socket queued" true "$(json queued)"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"

# a Unix socket only
rm -f "$TMP/port"
"$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" --set server.listen= \
    --set server.socket="$TMP/only.sock" --set redis.url="redis://127.0.0.1:$REDIS_PORT/0" \
    --set spool.path= 2>>"$DLOG" &
DPID=$!
wait_for 20 test -S "$TMP/only.sock"
wait_for 5 curl -sf --unix-socket "$TMP/only.sock" http://localhost/healthz
r=$(curl -s -o "$TMP/body" -w '%{http_code}' --unix-socket "$TMP/only.sock" \
    -H 'Content-Type: application/json' -d "$B" http://localhost/v1/score)
expect_eq "socket-only daemon" 200 "$r"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
