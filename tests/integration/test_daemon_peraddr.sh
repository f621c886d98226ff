#!/usr/bin/env bash
# limits.max_connections_per_addr: at its default, 64 keep-alive
# connections from one address are all served; set to 20, the 21st
# connection from 127.0.0.2 is closed at once (counted in /metrics) while
# 127.0.0.1 and Unix-socket clients are served, and a freed slot is usable
# again.
source "$(dirname "$0")/lib.sh"
train_model
start_redis

cat > "$TMP/peraddr.py" <<'PY'
import socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
GET = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"

def connect(src):
    return socket.create_connection(("127.0.0.1", port), 5, (src, 0))

def status(s, req=GET):
    """The status of one reply on s, or 'closed'."""
    try:
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return "closed"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        n = int([l.split(b":")[1] for l in head.split(b"\r\n")
                 if l.lower().startswith(b"content-length:")][0])
        while len(rest) < n:
            rest += s.recv(4096)
        return head.split(b" ")[1].decode()
    except OSError:
        return "closed"

if mode == "keepalive":  # 64 connections, 3 requests each, all kept open
    conns = [connect("127.0.0.1") for _ in range(64)]
    codes = [status(c) for _ in range(3) for c in conns]
    print("keepalive", sum(c == "200" for c in codes), "of", len(codes))
else:  # the cap is 20
    held = [connect("127.0.0.2") for _ in range(20)]
    print("held", sum(status(c) == "200" for c in held))
    extra = [connect("127.0.0.2") for _ in range(5)]
    print("extra", " ".join(status(c) for c in extra))
    other = connect("127.0.0.1")
    print("other", status(other))
    for c in held[:2]:
        c.close()
    time.sleep(0.3)
    print("again", status(connect("127.0.0.2")))
PY

# the default (256) lets a backend's 64 keep-alive connections through
start_daemon --set server.workers=2
python3 "$TMP/peraddr.py" "$PORT" keepalive > "$TMP/ka.out" 2>&1
cat "$TMP/ka.out"
expect_grep "64 keep-alive connections from one address at the default" \
    '^keepalive 192 of 192$' "$TMP/ka.out"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"

start_daemon --set server.workers=2 --set limits.max_connections_per_addr=20 \
    --set server.socket="$TMP/sock"
python3 "$TMP/peraddr.py" "$PORT" cap > "$TMP/cap.out" 2>&1
cat "$TMP/cap.out"
expect_grep "20 connections from 127.0.0.2 served" '^held 20$' "$TMP/cap.out"
expect_grep "the ones over the cap closed at once" \
    '^extra closed closed closed closed closed$' "$TMP/cap.out"
expect_grep "127.0.0.1 still served" '^other 200$' "$TMP/cap.out"
expect_grep "a freed slot is usable again" '^again 200$' "$TMP/cap.out"
curl -s "$URL/metrics" > "$TMP/metrics"
expect_grep "refusals counted" \
    '^modfilter_connections_refused_total\{reason="per_addr"\} 5$' "$TMP/metrics"
expect_grep "the warning names the address and the key" \
    'closing new connections from 127\.0\.0\.2: limits\.max_connections_per_addr=20' "$DLOG"
# Unix-socket clients are exempt: 25 at once, all served
seq 25 | xargs -P 25 -I{} curl -s -m 5 -o /dev/null -w '%{http_code}\n' \
    --unix-socket "$TMP/sock" http://x/healthz?{} > "$TMP/unix.out"
expect_eq "Unix-socket clients are not counted" 25 "$(grep -c '^200$' "$TMP/unix.out")"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"

# 0 turns it off; out of range is a config error
"$BIN/modfilterd" -t -c "$CONF" --set model.path="$TMP/m.mfm" --set spool.path= \
    --set limits.max_connections_per_addr=0 > "$TMP/t.out" 2>&1
expect_eq "0 is accepted" 0 $?
"$BIN/modfilterd" -t -c "$CONF" --set model.path="$TMP/m.mfm" \
    --set limits.max_connections_per_addr=-1 > "$TMP/t.out" 2>&1
expect_eq "a negative value is refused" 1 $?
expect_grep "with the key in the message" '^--set: limits.max_connections_per_addr: ' "$TMP/t.out"
finish
