# Helpers for the daemon's integration tests (sourced).  Each test gets a
# temp dir, its own redis-server on a free loopback port and the real
# modfilterd on port 0 (reading server.port_file).  Everything started here
# is killed by pid on exit, also when the test fails.
source "$(dirname "${BASH_SOURCE[0]}")/testlib.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mfd-test.XXXXXX")
REDIS_PID= DPID= REDIS_PORT= PORT= URL=
CONF="$TOP/config/modfilterd.conf"
DLOG="$TMP/daemon.log"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}

lib_cleanup() {
    local p
    for p in $DPID $REDIS_PID; do
        kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap lib_cleanup EXIT
[ -n "${KEEP_LOG:-}" ] && trap 'cat "$DLOG" >&2; lib_cleanup' EXIT

# A TCP port nobody listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.05
    done
}

start_redis() { # [port [more redis-server options...]]
    REDIS_PORT=${1:-${REDIS_PORT:-$(free_port)}}
    if [ $# -gt 0 ]; then shift; fi
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no --enable-debug-command local --dir "$TMP" --logfile "$TMP/redis.log" "$@" &
    REDIS_PID=$!
    wait_for 10 redis-cli -p "$REDIS_PORT" ping || { echo "redis did not start"; exit 1; }
}

stop_redis() {
    [ -n "$REDIS_PID" ] || return 0
    kill -TERM "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# A model trained on the tiny labelled set (once per test).
train_model() {
    "$BIN/modfilter" train --model "$TMP/m.mfm" "$TOP/tests/data/tiny.jsonl" >/dev/null 2>&1 \
        || { echo "cannot train the test model"; exit 1; }
}

# start_daemon [--set k=v ...]: foreground, port 0, log in $DLOG, learned
# snapshots in $TMP/state (never the checkout's run/state).  With this
# test's Redis running it returns once /readyz answers 200 (at most 10 s):
# the port file comes before the Redis connection, and a test's first
# submit must not race it on a loaded machine.  NO_READY_WAIT=1 skips that
# for a daemon that is meant not to become ready.
start_daemon() {
    rm -f "$TMP/port"
    [ -n "$REDIS_PORT" ] || REDIS_PORT=$(free_port)
    "$BIN/modfilterd" -f -c "$CONF" --set model.path="$TMP/m.mfm" \
        --set server.listen=127.0.0.1:0 --set server.port_file="$TMP/port" \
        --set redis.url="redis://127.0.0.1:$REDIS_PORT/0" --set spool.path= \
        --set model.state_dir="$TMP/state" \
        --set redis.timeout_ms=1000 "$@" 2>>"$DLOG" &
    DPID=$!
    wait_for 20 test -s "$TMP/port" || { echo "daemon did not start:"; cat "$DLOG"; exit 1; }
    PORT=$(cat "$TMP/port"); URL="http://127.0.0.1:$PORT"
    if [ -z "${NO_READY_WAIT:-}" ] && [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        wait_for 10 curl -sf -m 2 "$URL/readyz" ||
            echo "note: daemon not ready after 10 s (NO_READY_WAIT=1 if meant)" >&2
    fi
    return 0
}

# stop_daemon: SIGTERM, wait (bounded: then SIGKILL), exit status in STOP_RC.
stop_daemon() {
    local i
    kill -TERM "$DPID" 2>/dev/null
    for i in $(seq 1 300); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$DPID" 2>/dev/null && { echo "daemon ignored SIGTERM"; kill -KILL "$DPID"; }
    wait "$DPID"; STOP_RC=$?
    DPID=
}

# req METHOD PATH [BODY [curl args...]]: prints "STATUS BODY" on one line.
req() {
    local method=$1 path=$2 body=${3-}; shift 3 2>/dev/null || shift $#
    local out
    if [ -n "$body" ]; then
        out=$(curl -s -m 10 -o "$TMP/body" -w '%{http_code}' -X "$method" \
            -H 'Content-Type: application/json' --data-binary "$body" "$@" "$URL$path")
    else
        out=$(curl -s -m 10 -o "$TMP/body" -w '%{http_code}' -X "$method" "$@" "$URL$path")
    fi
    echo "$out $(cat "$TMP/body" 2>/dev/null)"
}

# json FIELD: a field of the JSON in $TMP/body (python, dotted path).
json() {
    python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print(json.dumps(v) if not isinstance(v, str) else v)' "$TMP/body" "$1"
}
