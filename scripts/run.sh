#!/usr/bin/env bash
# `make run`: modfilterd in the foreground with the default model on
# 127.0.0.1:8080 (LISTEN overrides), a private redis-server on a Unix socket
# under run/ (unless REDIS_URL is set), and tokens created in run/tokens on
# first run.  Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUN=$PWD/run
MODEL=${MODEL:-models/default.mfm}
LISTEN=${LISTEN:-127.0.0.1:8080}
mkdir -p "$RUN"
chmod 700 "$RUN"

if [ ! -f "$MODEL" ]; then
    echo "run.sh: $MODEL is missing (make model rebuilds it)" >&2
    exit 1
fi

# Tokens: created once, kept across runs.
if [ ! -s "$RUN/tokens" ]; then
    rnd() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
    umask 077
    {
        echo "# modfilter tokens for make run (created $(date -u +%FT%TZ))"
        echo "submit local:$(rnd)"
        echo "moderator admin:$(rnd)"
    } > "$RUN/tokens"
    echo "created $RUN/tokens"
fi
umask 077
awk '$1 == "submit" { print $2 }' "$RUN/tokens" > "$RUN/submit.tokens"
awk '$1 == "moderator" { print $2 }' "$RUN/tokens" > "$RUN/moderator.tokens"
SUBMIT=$(awk -F: '{ print $2; exit }' "$RUN/submit.tokens")
MODERATOR=$(awk -F: '{ print $2; exit }' "$RUN/moderator.tokens")
umask 022

REDIS_PID= DPID=
stop() {
    trap - INT TERM EXIT
    [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill -TERM "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    true
}
trap stop INT TERM EXIT

if [ -z "${REDIS_URL:-}" ]; then
    rm -f "$RUN/redis.sock"
    redis-server --port 0 --unixsocket "$RUN/redis.sock" --unixsocketperm 700 \
        --dir "$RUN" --appendonly yes --save '' --logfile "$RUN/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        redis-cli -s "$RUN/redis.sock" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    REDIS_URL="unix://$RUN/redis.sock"
    echo "redis-server: $REDIS_URL (log: run/redis.log)"
fi

cat <<MSG
tokens (run/tokens):
  submit:    $SUBMIT
  moderator: $MODERATOR
try:
  curl -s -H 'Authorization: Bearer $SUBMIT' -H 'Content-Type: application/json' \\
       -d '{"text":"Check out my channel for free gift cards"}' http://$LISTEN/v1/comments
  curl -s http://$LISTEN/metrics
Ctrl-C stops modfilterd and redis-server.
MSG

"$BUILD/modfilterd" -f -c config/modfilterd.conf \
    --set server.listen="$LISTEN" --set model.path="$MODEL" \
    --set redis.url="$REDIS_URL" \
    --set auth.submit_tokens_file="$RUN/submit.tokens" \
    --set auth.moderator_tokens_file="$RUN/moderator.tokens" \
    --set model.state_dir="$RUN/state" --set spool.path="$RUN/spool" &
DPID=$!
wait "$DPID" || true
DPID=
