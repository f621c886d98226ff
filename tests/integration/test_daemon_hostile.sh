#!/usr/bin/env bash
# Hostile clients from their own loopback address (127.0.0.2): hundreds of
# idle connections and byte-dripping requests (slowloris), a flood of
# pipelined requests and malformed HTTP; meanwhile a well-behaved client on
# 127.0.0.1 keeps being served (every request answered, latency measured).
# limits.max_connections_per_addr (its default, 256) closes the attacker's
# connections over it at once.
source "$(dirname "$0")/lib.sh"
train_model
start_redis
start_daemon --set server.workers=2 --set limits.request_timeout_s=2 \
    --set limits.idle_timeout_s=3 --set limits.max_connections=2000

python3 - "$PORT" > "$TMP/hostile.out" 2>&1 <<'PY'
import socket, sys, threading, time
port = int(sys.argv[1])
stop = time.time() + 8
attack = {"idle": 0, "drip": 0, "drip_cut": 0, "flood": 0, "garbage": 0}

def connect(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s

def idle():  # 600 connections that never send a byte
    socks = []
    for _ in range(600):
        try:
            socks.append(connect("127.0.0.2"))
            attack["idle"] += 1
        except OSError:
            break
    while time.time() < stop:
        time.sleep(0.2)
    for s in socks:
        s.close()

def drip():  # 100 requests sent one byte every 0.3 s
    socks = []
    for _ in range(100):
        try:
            s = connect("127.0.0.2")
            s.setblocking(False)
            socks.append(s)
            attack["drip"] += 1
        except OSError:
            break
    req = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n"
    i = 0
    while time.time() < stop and socks:
        for s in list(socks):
            try:
                s.send(req[i % len(req):i % len(req) + 1])
            except OSError:
                attack["drip_cut"] += 1
                socks.remove(s)
                s.close()
        i += 1
        time.sleep(0.3)
    for s in socks:
        s.close()

def flood():  # pipelined requests as fast as the socket takes them
    body = b'{"text":"flood"}'
    one = (b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    while time.time() < stop:
        try:
            s = connect("127.0.0.2")
            s.sendall(one * 200)
            s.settimeout(2)
            while s.recv(65536):
                pass
        except OSError:
            pass
        finally:
            attack["flood"] += 1
            s.close()

def garbage():  # malformed HTTP
    junk = [b"\x00\xff\xfe garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
            b"POST /v1/score HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            b"POST /v1/score HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\nx",
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"]
    while time.time() < stop:
        for j in junk:
            try:
                s = connect("127.0.0.2")
                s.sendall(j)
                s.settimeout(1)
                s.recv(4096)
            except OSError:
                pass
            finally:
                attack["garbage"] += 1
                s.close()

threads = [threading.Thread(target=f) for f in (idle, drip, flood, garbage)]
for t in threads:
    t.start()
time.sleep(1)  # the attack is in place

# the well-behaved client: 200 requests, one connection at a time
lat, bad = [], 0
body = b'{"text":"a normal comment, thanks for the post"}'
req = (b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
for i in range(200):
    t0 = time.time()
    try:
        s = connect("127.0.0.1")
        s.sendall(req)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        if not data.startswith(b"HTTP/1.1 200"):
            bad += 1
    except OSError:
        bad += 1
    lat.append(time.time() - t0)
for t in threads:
    t.join()
lat.sort()
print("good client: %d requests, %d failed, p50 %.1f ms, p99 %.1f ms, max %.1f ms" %
      (len(lat), bad, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3, lat[-1] * 1e3))
print("attack: %(idle)d idle, %(drip)d dripping (%(drip_cut)d cut off), %(flood)d flood connections, %(garbage)d malformed" % attack)
print("RESULT", bad, attack["drip_cut"], attack["idle"])
PY
cat "$TMP/hostile.out"
res=$(awk '/^RESULT/ {print $2, $3, $4}' "$TMP/hostile.out")
read -r bad cut idle <<<"${res:-x x x}"
expect_eq "good client always served" 0 "$bad"
expect_eq "all 600 idle connections were made (the kernel accepts them)" 600 "$idle"
curl -s "$URL/metrics" > "$TMP/metrics"
refused=$(awk -F' ' '/^modfilter_connections_refused_total\{reason="per_addr"\}/ {print $2}' "$TMP/metrics")
echo "refused by limits.max_connections_per_addr: ${refused:-none}"
[ "${refused:-0}" -ge 300 ] 2>/dev/null; expect_eq "attacker's connections over 256 refused" 0 $?
[ "${cut:-0}" -ge 90 ] 2>/dev/null; expect_eq "dripping requests cut off by request_timeout_s" 0 $?
curl -sf "$URL/healthz" >/dev/null; expect_eq "alive after the attack" 0 $?
stop_daemon; expect_eq "exit status" 0 "$STOP_RC"
finish
