#!/usr/bin/env bash
# Secrets from files: the Redis password (redis.password_file) and tokens
# (auth.*_tokens_file) work, and none of them ever reaches the log or
# /metrics; a wrong password is never a false `queued`.
source "$(dirname "$0")/lib.sh"
train_model
PW='s3cret-redis-pass-4711' WRONG='not-the-pass-0815' TOK='file-only-token-2718281828'
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --requirepass "$PW" --dir "$TMP" --logfile "$TMP/redis.log" &
REDIS_PID=$!
wait_for 10 redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$PW" ping || { echo "redis did not start"; exit 1; }
rauth() { redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$PW" "$@"; }
umask 077
printf '%s\n' "$PW" > "$TMP/redis.pass"
printf '%s\n' "$WRONG" > "$TMP/wrong.pass"
printf 'blog:%s\n' "$TOK" > "$TMP/submit.tokens"
B='{"id":"sec-1","text":"a comment to keep"}'
H=(-H "Authorization: Bearer $TOK")
st() { local r; r=$(req "$@"); echo "${r%% *}"; }
no_secret() { # where file
    if grep -qF -e "$PW" -e "$WRONG" -e "$TOK" "$2"; then
        echo "FAIL: a secret in $1"; FAILS=$((FAILS + 1))
    fi
}

# the right password, from a file
start_daemon --set server.workers=1 --set redis.password_file="$TMP/redis.pass" \
    --set auth.submit_tokens_file="$TMP/submit.tokens"
wait_for 10 curl -sf "$URL/readyz"
expect_eq "ready with the password" 200 "$(st GET /readyz)"
expect_eq "submit" 200 "$(st POST /v1/comments "$B" "${H[@]}")"
expect_eq "queued" true "$(json queued)"
expect_eq "in Redis" 1 "$(rauth exists modfilter:item:sec-1)"
curl -s "$URL/metrics" > "$TMP/metrics"
expect_grep "metrics served" '^modfilter_requests_total' "$TMP/metrics"
no_secret "/metrics" "$TMP/metrics"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
if grep -q 'open to other accounts' "$DLOG"; then
    echo "FAIL: a warning about mode 600 files"; FAILS=$((FAILS + 1))
fi

# a wrong password: not ready, and never a false queued
NO_READY_WAIT=1 start_daemon --set server.workers=1 --set redis.password_file="$TMP/wrong.pass" \
    --set auth.submit_tokens_file="$TMP/submit.tokens"
wait_for 10 grep -q 'AUTH failed' "$DLOG"
expect_eq "the log says why" 0 "$?"
expect_eq "not ready with a wrong password" 503 "$(st GET /readyz)"
r=$(st POST /v1/comments '{"id":"sec-2","text":"another one"}' "${H[@]}")
expect_eq "submit refused" 503 "$r"
expect_eq "not queued" 0 "$(rauth exists modfilter:item:sec-2)"
curl -s "$URL/metrics" > "$TMP/metrics"
no_secret "/metrics" "$TMP/metrics"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
no_secret "the log" "$DLOG"

# a secret file others can read: a warning that names it (and no secret)
: > "$DLOG"
chmod 644 "$TMP/submit.tokens"
start_daemon --set server.workers=1 --set redis.password_file="$TMP/redis.pass" \
    --set auth.submit_tokens_file="$TMP/submit.tokens"
# (logged with the start-up line, after the port file is written)
wait_for 10 grep -q 'open to other accounts' "$DLOG"
expect_grep "warning for a 0644 file" 'auth.submit_tokens_file: .*submit.tokens is open to other accounts \(mode 0644\)' "$DLOG"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
no_secret "the log" "$DLOG"

# a missing or empty password file stops start-up with file:line: reason
: > "$TMP/empty.pass"
for f in "$TMP/nope.pass" "$TMP/empty.pass"; do
    "$BIN/modfilterd" -t -c "$CONF" --set model.path="$TMP/m.mfm" \
        --set redis.password_file="$f" >"$TMP/t.out" 2>&1
    rc=$?
    expect_eq "-t refuses $(basename "$f")" 1 "$rc"
    expect_grep "-t names the key ($(basename "$f"))" 'password_file' "$TMP/t.out"
done
finish
