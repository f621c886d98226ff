#!/usr/bin/env bash
# Spooled comments per second: Redis down (redis.url on a closed port), so
# every POST /v1/comments is appended to the spool and fsync'd before its
# "queued": true, "spooled": true.  wrk with CONNS connections for DURATION
# seconds; the spool on the disk under build/ (not a tmpfs).  Prints the
# rate, latency, the records appended and the fdatasyncs that covered them.
# Usage: BUILD=build CONNS=32 DURATION=5 WORKERS=2 [DAEMON=path/to/modfilterd]
#        scripts/bench-spool.sh
set -eu
BUILD=${BUILD:-build} CONNS=${CONNS:-32} DURATION=${DURATION:-5}
WORKERS=${WORKERS:-2}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
T=$(mktemp -d "$PWD/$BUILD/bench-spool.XXXXXX")
DPID=
cleanup() { [ -z "$DPID" ] || { kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null || true; }; rm -rf "$T"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

cat >"$T/post.lua" <<'LUA'
local counter, run = 0, math.random(1e9)
function request()
  counter = counter + 1
  local body = '{"id":"sp' .. run .. '-' .. counter .. '","text":"a comment to spool, number ' .. counter .. ', with a few more words"}'
  return wrk.format("POST", "/v1/comments", {["Content-Type"] = "application/json"}, body)
end
LUA

"${DAEMON:-$BUILD/modfilterd}" -f -c config/modfilterd.conf --set server.listen=127.0.0.1:0 \
    --set server.port_file="$T/port" --set server.workers="$WORKERS" \
    --set redis.url="redis://127.0.0.1:$(free_port)/0" --set spool.path="$T/spool" \
    --set model.state_dir="$T/state" --set queue.verdicts=allow,review,reject \
    >/dev/null 2>"$T/daemon.log" &
DPID=$!
for i in $(seq 1 200); do [ -s "$T/port" ] && break; sleep 0.05; done
URL="http://127.0.0.1:$(cat "$T/port")"
out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$T/post.lua" "$URL" 2>&1)
rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
curl -s "$URL/metrics" > "$T/metrics"
m() { awk -v m="$1" '$1 == m {print $2}' "$T/metrics"; }
syncs=$(m modfilter_spool_syncs_total)
printf 'spooled comments: %s/s with %s connections, %s workers (p50 %s, p99 %s); %s appended with %s fdatasyncs; non-2xx %s\n' \
    "$rps" "$CONNS" "$WORKERS" "$p50" "$p99" "$(m modfilter_spool_appended_total)" "${syncs:-(one each)}" "${errs:-0}"
