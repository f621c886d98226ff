#!/usr/bin/env bash
# The daemon's own HTTP layer (daemon/httpd.c): chunked bodies, Expect:
# 100-continue (curl with a 2 KiB body), HTTP/1.0 with and without
# keep-alive (and with a chunked body: closed), pipelined requests
# answered in order (HEAD without a body; after a half-close too),
# oversized headers and malformed requests answered in JSON, a dripping
# client cut off with 408, a client that does not read its replies cut
# off, an idle keep-alive connection closed.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
start_daemon --set server.workers=1 --set limits.request_timeout_s=2 \
    --set limits.idle_timeout_s=2 --set limits.max_body=4096 \
    --set limits.max_headers=2048

# chunked body
r=$(curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H 'Transfer-Encoding: chunked' --data-binary '{"text":"a chunked comment"}' "$URL/v1/score")
expect_eq "chunked body" 200 "$r"; expect_eq "chunked body scored" false "$(json queued)"

# Expect: 100-continue with a 2 KiB body: 100 first, then the answer
python3 -c 'import json; print(json.dumps({"text": "long comment " * 157}))' > "$TMP/b2k"
expect_eq "2 KiB body" 2 "$(( $(wc -c < "$TMP/b2k") / 1024 ))"
r=$(curl -sv -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H 'Expect: 100-continue' --data-binary @"$TMP/b2k" "$URL/v1/score" 2>"$TMP/curl.err")
expect_eq "100-continue" 200 "$r"
expect_grep "100 Continue received" '^< HTTP/1.1 100 Continue' "$TMP/curl.err"
# ... and over max_body: 413 at once instead of 100
head -c 10000 /dev/zero | tr '\0' x > "$TMP/b10k"
r=$(curl -sv -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    -H 'Expect: 100-continue' --data-binary @"$TMP/b10k" "$URL/v1/score" 2>"$TMP/curl.err")
expect_eq "413 instead of 100" 413 "$r"; expect_eq "413 JSON" payload_too_large "$(json error.code)"
if grep -q '100 Continue' "$TMP/curl.err"; then expect_eq "no 100 before 413" no yes; fi

# raw HTTP: 1.0, pipelining, errors, deadlines
PYTHONPATH="$TOP/tests/integration" python3 - "$PORT" "$DPID" > "$TMP/raw.out" 2>&1 <<'PY'
import socket, sys, time
from rawhttp import replies
port = int(sys.argv[1])

def conn():
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10)
    return s

def read_all(s):
    """Everything until the server closes."""
    data = b""
    while True:
        c = s.recv(65536)
        if not c:
            return data
        data += c

def closed(s):
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False

# HTTP/1.0 closes after the reply
s = conn(); s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
r, _ = replies(s, 1)
print("http10", r[0][0], r[0][1].get("connection"), "closed" if closed(s) else "open")
# HTTP/1.0 with keep-alive stays open
s = conn(); s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
r, _ = replies(s, 1)
s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
r2, _ = replies(s, 1)
print("http10ka", r[0][0], r[0][1].get("connection"), r2[0][0] if r2 else "-")
# HTTP/1.0 with Transfer-Encoding: faulty framing (RFC 9112 6.1): answered,
# then closed even with keep-alive; the pipelined request is not read
s = conn(); s.settimeout(3)
s.sendall(b"POST /v1/score HTTP/1.0\r\nConnection: keep-alive\r\n"
          b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"c\r\n{\"text\":\"a\"}\r\n0\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n")
r, rest = replies(s, 2)
print("http10te", " ".join("%d %s" % (x[0], x[1].get("connection")) for x in r),
      "closed" if not rest and closed(s) else "open")

# three pipelined requests in one write, answered in order; then HEAD
s = conn()
body = b'{"text":"pipelined"}'
s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(body), body) +
          b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
          b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
r, _ = replies(s, 3)
print("pipelined", " ".join(str(x[0]) for x in r))
s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
data = read_all(s)
parts = data.split(b"HTTP/1.1 ")
print("head", len(parts) - 1, b"Content-Length" in parts[1], parts[1].endswith(b"\r\n\r\n"), data.count(b'{"status":"ok"}'))

# a half-close after pipelined requests ("printf ... | nc"): /metrics
# waits on Redis; every request read is still answered, then the close
s = conn()
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
          b"POST /v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(body), body) +
          b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
s.shutdown(socket.SHUT_WR)
data = read_all(s)
print("halfclose", data.count(b"HTTP/1.1 200 OK\r\n"), b"modfilter_requests_total" in data, data.endswith(b'{"status":"ok"}\n'))

# oversized headers and garbage: JSON errors, then the connection closes
s = conn(); s.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"y" * 3000 + b"\r\n\r\n")
r, _ = replies(s, 1)
print("431", r[0][0], r[0][2].strip().decode(), "closed" if closed(s) else "open")
s = conn(); s.sendall(b"\x00\xff garbage\r\n\r\n")
r, _ = replies(s, 1)
print("400", r[0][0], r[0][2].strip().decode())
s = conn(); s.sendall(b"GET / HTTP/1.1\r\nX-A: a\r\n folded\r\n\r\n")
r, _ = replies(s, 1)
print("obsfold", r[0][0])

# slowloris: part of a head, then nothing: 408 after request_timeout_s (2 s)
s = conn(); t0 = time.time(); s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: t\r\n")
r, _ = replies(s, 1)
print("slow", r[0][0] if r else "-", r[0][2].strip().decode() if r else "", round(time.time() - t0), "closed" if closed(s) else "open")

# a client that pipelines requests but never reads the replies: cut off
# after request_timeout_s (2 s) of blocked output, the daemon's memory flat
s = conn()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.setblocking(False)
rss = lambda: int([l.split()[1] for l in open("/proc/%s/status" % sys.argv[2]) if l.startswith("VmRSS")][0])
rss0, t0, cut = rss(), time.time(), "open"
while time.time() - t0 < 6:
    try:
        s.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" * 100)
    except BlockingIOError:
        time.sleep(0.05)
    except OSError:
        cut = "cut"
        break
# (64 MiB: ASan's quarantine keeps freed replies; without it, ~200 KiB)
grew = rss() - rss0
print("nonreader", cut, round(time.time() - t0), "bounded" if grew < 65536 else "grew", grew, "KiB")

# idle keep-alive: closed after idle_timeout_s (2 s)
s = conn(); s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
replies(s, 1)
t0 = time.time()
print("idle", "closed" if closed(s) else "open", round(time.time() - t0))
PY
cat "$TMP/raw.out"
expect_grep "HTTP/1.0 closes" '^http10 200 close closed$' "$TMP/raw.out"
expect_grep "HTTP/1.0 keep-alive" '^http10ka 200 keep-alive 200$' "$TMP/raw.out"
expect_grep "HTTP/1.0 chunked closes" '^http10te 200 close closed$' "$TMP/raw.out"
expect_grep "pipelined in order" '^pipelined 200 404 200$' "$TMP/raw.out"
expect_grep "HEAD has no body" '^head 2 True True 1$' "$TMP/raw.out"
expect_grep "half-close answered" '^halfclose 3 True True$' "$TMP/raw.out"
expect_grep "431 JSON, closed" '^431 431 \{"error":\{"code":"headers_too_large".* closed$' "$TMP/raw.out"
expect_grep "400 JSON" '^400 400 \{"error":\{"code":"bad_request"' "$TMP/raw.out"
expect_grep "obs-fold refused" '^obsfold 400$' "$TMP/raw.out"
expect_grep "slowloris 408" '^slow 408 \{"error":\{"code":"request_timeout".* [23] closed$' "$TMP/raw.out"
expect_grep "idle closed" '^idle closed [23]$' "$TMP/raw.out"
expect_grep "non-reader cut off, memory bounded" '^nonreader cut [23] bounded ' "$TMP/raw.out"
r=$(req GET /healthz); expect_eq "alive" 200 "${r%% *}"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
