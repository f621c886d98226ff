#!/usr/bin/env bash
# Limits: 1,000 requests pipelined on one keep-alive connection, 64
# keep-alive connections from one address, limits.max_connections, a
# dripping client cut off by limits.request_timeout_s, oversized bodies and
# headers.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
start_daemon --set server.workers=2 --set limits.request_timeout_s=2 \
    --set limits.max_connections=100 --set limits.max_body=4096 \
    --set limits.max_headers=2048

python3 - "$PORT" > "$TMP/pipe.out" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def reqbytes(i, path="/v1/score", close=False):
    body = ('{"id":"p-%d","text":"pipelined comment number %d"}' % (i, i)).encode()
    return (b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n" % (path.encode(), len(body),
            b"Connection: close\r\n" if close else b"")) + body

def read_replies(s, n, deadline):
    """Read n HTTP replies; returns their status codes."""
    buf, codes = b"", []
    while len(codes) < n and time.time() < deadline:
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].decode()
            length = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.lower() == "content-length":
                    length = int(v)
            if len(buf) < end + 4 + length:
                break
            codes.append(int(head.split()[1]))
            buf = buf[end + 4 + length:]
        if len(codes) >= n:
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return codes

# 1,000 requests pipelined on one connection, written all at once (half
# of them wait on Redis)
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(20)
s.sendall(b"".join(reqbytes(i, "/v1/comments" if i % 2 else "/v1/score") for i in range(1000)))
codes = read_replies(s, 1000, time.time() + 60)
print("pipelined", len(codes), "ok" if codes.count(200) == 1000 else "BAD %r" % codes[:5])
s.close()

# 64 keep-alive connections from one address, each used twice
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
good = 0
for rnd in range(2):
    for i, c in enumerate(conns):
        c.settimeout(10)
        c.sendall(reqbytes(i))
    for c in conns:
        good += read_replies(c, 1, time.time() + 10).count(200)
print("keepalive", good, "ok" if good == 128 else "BAD")
for c in conns:
    c.close()
PY
cat "$TMP/pipe.out"
expect_grep "1000 pipelined requests answered" '^pipelined 1000 ok' "$TMP/pipe.out"
expect_grep "64 keep-alive connections" '^keepalive 128 ok' "$TMP/pipe.out"

# a dripping client is cut off after limits.request_timeout_s (2 s), while
# a well-behaved client on another connection is served meanwhile
python3 - "$PORT" > "$TMP/drip.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.time()
msg = b"POST /v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + b" " * 100
try:
    for b in msg:
        s.send(bytes([b]))
        time.sleep(0.1)
        if time.time() - t0 > 15:
            break
    data = s.recv(100)
    print("reply" if data else "closed", round(time.time() - t0, 1))
except OSError:
    print("closed", round(time.time() - t0, 1))
PY
DRIP=$!
sleep 0.5
r=$(req POST /v1/score '{"text":"meanwhile"}'); expect_eq "served while dripping" 200 "${r%% *}"
wait "$DRIP"
cat "$TMP/drip.out"
expect_grep "dripping client closed in time" '^closed [1-3]\.' "$TMP/drip.out"

# limits.max_connections: the 101st connection is closed at once
python3 - "$PORT" > "$TMP/max.out" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(5)
try:
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    print("extra", "closed" if extra.recv(100) == b"" else "served")
except OSError:
    print("extra closed")
for c in conns[:10]:
    c.close()
time.sleep(0.3)
again = socket.create_connection(("127.0.0.1", port))
again.settimeout(5)
again.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
print("again", again.recv(100).split(b"\r\n")[0].decode())
PY
cat "$TMP/max.out"
expect_grep "over max_connections" '^extra closed' "$TMP/max.out"
expect_grep "under max_connections again" '^again HTTP/1.1 200' "$TMP/max.out"

# new connections are spread over the two workers, whichever worker the
# kernel wakes to accept them: 20 keep-alive connections opened one after
# the other, each served, with the one asking /metrics (the 21st) open
# first: 10 and 11 a worker; once they close, only that one is left
python3 - "$PORT" > "$TMP/spread.out" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def get(s, path):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(65536)
    return body.decode()
def per_worker(s):
    return sorted(int(l.split()[1]) for l in get(s, "/metrics").splitlines()
                  if l.startswith("modfilter_worker_connections{"))
def settled(s):
    # the connections of the tests above gone: only this one left
    deadline = time.time() + 10
    while sum(per_worker(s)) > 1 and time.time() < deadline:
        time.sleep(0.05)
    return per_worker(s)
m = socket.create_connection(("127.0.0.1", port))
m.settimeout(5)
print("before", settled(m))
conns = []
for i in range(20):
    c = socket.create_connection(("127.0.0.1", port))
    c.settimeout(5)
    get(c, "/healthz")
    conns.append(c)
print("open", per_worker(m))
for c in conns:
    c.close()
print("closed", settled(m))
PY
cat "$TMP/spread.out"
expect_grep "connections spread over the workers" '^open \[10, 11\]' "$TMP/spread.out"
expect_grep "connections counted out" '^closed \[0, 1\]' "$TMP/spread.out"

# the threads carry names, for top -H and ps -L
cat /proc/"$DPID"/task/*/comm | sort > "$TMP/threads"
expect_grep "worker 0's thread named" '^mf-worker0$' "$TMP/threads"
expect_grep "worker 1's thread named" '^mf-worker1$' "$TMP/threads"

# bodies just above max_body and far above it, headers over max_headers:
# every limit answers the daemon's JSON
python3 -c 'import json; print(json.dumps({"text": "x" * 5000}))' > "$TMP/b1"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/b1" "$URL/v1/comments")
expect_eq "body over max_body" 413 "$r"; expect_eq "JSON 413" payload_too_large "$(json error.code)"
head -c 100000 /dev/zero | tr '\0' x > "$TMP/b2"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/b2" "$URL/v1/comments")
expect_eq "body far over max_body" 413 "$r"; expect_eq "JSON 413 far over" payload_too_large "$(json error.code)"
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -H "X-Big: $(head -c 3000 /dev/zero | tr '\0' y)" "$URL/healthz")
expect_eq "headers over max_headers" 431 "$r"; expect_eq "JSON 431" headers_too_large "$(json error.code)"
r=$(req GET /healthz); expect_eq "alive" 200 "${r%% *}"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
