#!/usr/bin/env bash
# The HTTP layer's output flow (daemon/httpd.c): requests pipelined behind
# a large one whose replies pass HTTPD_OUT_HIGH (64 KiB) in one pass are
# all answered (no stall, no false 408); a client reading a 2 MB reply
# steadily but slower than limits.request_timeout_s allows for the whole
# of it gets all of it (the deadline is for no progress at all).
source "$(dirname "$0")/lib.sh"
train_model
start_redis
MOD=moderator-token-0123456789
start_daemon --set server.workers=1 --set limits.request_timeout_s=1 \
    --set auth.moderator_tokens="alice:$MOD" \
    --set queue.verdicts=allow,review,reject --set server.socket="$TMP/sock"

PYTHONPATH="$TOP/tests/integration" python3 - "$PORT" "$TMP/sock" "$MOD" > "$TMP/flow.out" 2>&1 <<'PY'
import json, socket, sys, time
from rawhttp import replies
port, sock, mod = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def codes(s, n, quiet=3):
    """The status codes of up to n replies (quiet: s's timeout)."""
    s.settimeout(quiet)
    return [r[0] for r in replies(s, n)[0]]

# one 50 KB request (the input buffer grows), then 600 small ones in the
# same write: their replies pass 64 KiB within one parsing pass
body = json.dumps({"text": "word " * 10000}).encode()
s = socket.create_connection(("127.0.0.1", port))
t0 = time.time()
s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n%s" % (len(body), body) +
          b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n" * 600)
got = codes(s, 601)
print("pipelined", len(got), sorted(set(got)), round(time.time() - t0))
s.close()

# 40 queued comments of ~50 KB: GET /v1/queue is ~2 MB
c = socket.create_connection(("127.0.0.1", port))
for i in range(40):
    b = json.dumps({"id": "big-%d" % i, "text": ("comment %d, check out my channel " % i) * 1500}).encode()
    c.sendall(b"POST /v1/comments HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(b), b))
print("queued", codes(c, 40, 10).count(200))
c.close()

# a steady reader at ~800 KB/s at most on the Unix socket (its send
# buffer does not grow like loopback TCP's): 2.5 s or more for a reply
# that request_timeout_s (1 s) of blocked writing would cut.  The daemon
# may write again only once the reader has drained about 3/4 of the
# socket's buffer (~160 KB, 0.2 s at this pace): at 400 KB/s a loaded
# machine stretched that gap past the 1 s deadline.
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
s.sendall(b"GET /v1/queue?limit=40 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n" % mod.encode())
s.settimeout(5)
buf, t0, want = bytearray(), time.time(), None
while True:
    try:
        chunk = s.recv(8192)
    except OSError as e:
        print("error", e)
        break
    if not chunk:
        break
    buf += chunk
    end = buf.find(b"\r\n\r\n")
    if want is None and end >= 0:
        for l in buf[:end].split(b"\r\n")[1:]:
            if l.lower().startswith(b"content-length:"):
                want = end + 4 + int(l.split(b":")[1])
    if want is not None and len(buf) >= want:
        break
    time.sleep(0.01)
print("slowread", "complete" if want and len(buf) >= want else "cut",
      len(buf), want, round(time.time() - t0))
PY
cat "$TMP/flow.out"
expect_grep "pipelined past 64 KiB answered" '^pipelined 601 \[200\] ' "$TMP/flow.out"
expect_grep "40 big comments queued" '^queued 40$' "$TMP/flow.out"
expect_grep "steady slow reader served" '^slowread complete [0-9]{7} [0-9]{7} ([2-9]|1[0-9])$' "$TMP/flow.out"
r=$(req GET /healthz); expect_eq "alive" 200 "${r%% *}"
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
