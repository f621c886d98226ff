# Shared by scripts/bench-http.sh and scripts/load.sh (sourced): a temp dir,
# request bodies made of real comments, a private redis-server without
# persistence, start/stop of modfilterd, and run_wrk.  Everything started
# here is stopped on exit.  Needs BUILD, D (data sets), DURATION, CONNS.
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
T=$(mktemp -d)
PIDS=()
# (|| true: under set -e a pid already stopped would end the trap early.)
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT

# Request bodies: real comments from the data sets, as a Lua table.
python3 - "$T/texts.lua" "$D/youtube_spam.jsonl" "$D/davidson_hate_offensive.jsonl" "$D/mexa3t_aggressiveness_es.jsonl" <<'PY'
import json, sys
texts = [json.loads(l)["text"] for f in sys.argv[2:] for l in open(f)][::7][:4000]
with open(sys.argv[1], "w") as out:
    out.write("texts = {\n")
    for t in texts:
        j = json.dumps(t, ensure_ascii=False)
        if "]==]" not in j:
            out.write("  [==[%s]==],\n" % j)
    out.write("}\n")
PY
# POST real comments, each with a new id; with COUNT_ACKS=1 (load.sh) count
# the acknowledgements (200 with "queued":true) into $T/acked when wrk is
# done.  Only then is response() defined: with it wrk hands every reply's
# headers and body to Lua, which cost it about 15% more CPU per request
# (the bench checks the count in Redis instead).  Each request is
# built in advance around its id (a run prefix from /dev/urandom, the wrk
# thread, a 12-digit counter): wrk shares the 2 cores with the server, and
# building requests with wrk.format cost it about a third more CPU.
cat >"$T/post.lua" <<LUA
dofile("$T/texts.lua")
local counter = 0
local threads = {}
local head, tail = {}, {}
tid = 0 -- globals: setup() sets tid in each thread's own state
acked = 0
function setup(thread) table.insert(threads, thread); thread:set("tid", #threads) end
function init(args)
  local path = args[1] or "/v1/comments"
  local f = io.open("/dev/urandom", "rb")
  local run = f:read(6):gsub(".", function(c) return string.format("%02x", c:byte()) end)
  f:close()
  for i, t in ipairs(texts) do
    local b1 = '{"id":"b' .. tid .. '-' .. run .. '-'
    local b2 = '","text":' .. t .. '}'
    head[i] = "POST " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\n" ..
      "Content-Type: application/json\r\nContent-Length: " ..
      (#b1 + 12 + #b2) .. "\r\n\r\n" .. b1
    tail[i] = b2
  end
end
function request()
  counter = counter + 1
  local i = (counter % #texts) + 1
  return head[i] .. string.format("%012d", counter) .. tail[i]
end
LUA
# When wrk is done: the tail (p99.9 and the slowest, ms) into $T/tail,
# for run_wrk's line.
cat >>"$T/post.lua" <<LUA
function done(summary, latency, requests)
  local f = io.open("$T/tail", "w")
  f:write(string.format("p99.9 %6.2fms  max %6.2fms", latency:percentile(99.9) / 1000, latency.max / 1000))
  f:close()
  if count_acks then count_acks() end
end
LUA
[ "${COUNT_ACKS:-0}" = 0 ] || cat >>"$T/post.lua" <<LUA
function response(status, headers, body)
  if status == 200 and body:find('"queued":true', 1, true) then acked = acked + 1 end
end
function count_acks()
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("acked") end
  local f = io.open("$T/acked", "w"); f:write(n); f:close()
end
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" --logfile "$T/redis.log" >/dev/null &
PIDS+=($!)
for i in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

run_wrk() { # name url path
    curl -s -o "$T/sample" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"text":"bench sample"}' "$2$3" >"$T/status"
    rm -f "$T/tail"
    local out; out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$T/post.lua" "$2" -- "$3" 2>&1)
    local rps p50 p99 errs
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf '%-34s %10s req/s  p50 %8s  p99 %8s  %s  non-2xx %s\n' "$1" "$rps" "$p50" "$p99" \
        "$(cat "$T/tail" 2>/dev/null)" "${errs:-0}"
    [ -z "$errs" ] || { echo "  a sample answer: $(cat "$T/status") $(head -c 300 "$T/sample")"; }
    echo "$rps" >"$T/last"
}

start_daemon() { # workers [command to run it under...]; sets DPID and URL
    local workers=$1; shift
    rm -f "$T/port"
    "$@" "$BUILD/modfilterd" -f -c config/modfilterd.conf --set server.listen=127.0.0.1:0 \
        --set server.port_file="$T/port" --set server.workers="$workers" \
        --set redis.url="redis://127.0.0.1:$RPORT/0" --set spool.path= \
        --set queue.verdicts=allow,review,reject >/dev/null 2>"$T/daemon.log" &
    DPID=$!; PIDS+=($DPID)
    for i in $(seq 1 600); do [ -s "$T/port" ] && break; sleep 0.05; done
    URL="http://127.0.0.1:$(cat "$T/port")"
    for i in $(seq 1 600); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.05; done
}
stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }

