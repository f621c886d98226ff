#!/usr/bin/env python3
"""Chaos soak: comments, moderation and training under random faults.

usage: scripts/chaos.py [--bin build] [--seconds 120] [--seed N]

Starts its own redis-server (appendonly, appendfsync always, so a Redis
killed with SIGKILL keeps what it acknowledged) on a free loopback port and
two modfilterd sharing it (2 workers each, each with its own port, spool,
state directory and copy of the model file, a moderator token; "a" lists
the queue oldest first, "b" most urgent first), then for the given time:

  - 6 submitters post real-looking comments, each with a new id, to
    either daemon, and note every answer (queued, spooled, verdict, how
    long it took) and every request that got none;
  - an Akismet client posts comment-check forms (its answer's headers say
    whether the comment was queued, and under which id) and now and then
    submit-spam or submit-ham;
  - a moderator lists the queue, claims, decides (one at a time and in
    bulk), sometimes undoes, trains, and reads the history and stats, on
    either daemon;
  - 3 slow or broken clients: a request dripped a byte at a time (the
    daemon must answer 408 at limits.request_timeout_s), half a body then
    a close or a half-close, garbage (a 4xx, then the close), or a
    connection that sends nothing (closed at limits.idle_timeout_s);
  - every 0.5-2.5 s one fault, on one daemon where it concerns one: Redis
    paused (SIGSTOP) for 0.2-3 s, Redis killed and restarted, the daemon
    killed (SIGKILL) and restarted on its spool, the daemon stopped
    (SIGTERM, must exit 0) and restarted, a SIGHUP, the urgent order's
    marker deleted (as an operator stops keeping it: the next list on "b"
    or its restart rebuilds the order in steps while the rest goes on), or
    a model swap: its
    model file replaced (atomically) by another valid model or a damaged
    one, SIGHUP, then restored, SIGHUP.  A valid one must be taken (the
    id in modfilter_model_info changes), a damaged one refused with a log
    line while the daemon keeps answering with the model it had.

Then the faults stop, the spools drain, and it checks what DESIGN.md
promises: every comment answered `queued: true` is in Redis (its item hash
exists), every one answered `queued: false` is not, no answer on any route
had a 5xx other than 503, 99% of the submitters' answers came within
LATENCY_P99 s, each SIGTERM ended with status 0, no daemon log holds a
sanitizer report, and both daemons have learned the whole training stream
and agree on the model (its id, the examples behind each head, the scores
of a few texts), and the urgent order, once a list on "b" has kept it,
holds exactly the queued ids, each scored with its record's highest score
(all ids; the scores of 2,000 of them).  Exit status 1 when a check fails (its files are kept
then, and removed after a pass).  Processes it started are stopped by pid
on exit.
"""
import argparse
import http.client
import json
import os
import random
import re
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ("free money click here subscribe to my channel great video love it "
         "you are an idiot stupid thanks for sharing this song is amazing "
         "me encanta este video eres un idiota gracias visita mi canal "
         "check out http://example.com/win now best post ever").split()
AGREE_TEXTS = ("subscribe to my channel for free money",
               "you are an idiot and your video is stupid",
               "thanks for sharing, great post",
               "eres un idiota, visita mi canal")

AKISMET_KEY = "chaos-akismet-key-0123456789"
MODERATOR_TOKEN = "chaos-moderator-token-0123456789"
REQUEST_TIMEOUT_S = 2  # limits.request_timeout_s of the soak's daemons
IDLE_TIMEOUT_S = 3     # limits.idle_timeout_s
CUT_SLACK_S = 1.5      # how late past a limit a cut-off may come
LATENCY_P99 = 1.0      # s; Redis paused costs redis.timeout_ms (0.3 s)
RELOAD_WAIT_S = 15     # for a SIGHUP's outcome to show
SCORE_TOLERANCE = 1e-9  # between daemons that learned the same stream
MODEL_INFO = re.compile(r'^modfilter_model_info\{id="([^"]*)",version="(\d+)"\}', re.M)
LABEL_EXAMPLES = re.compile(r"^modfilter_label_examples\{.*$", re.M)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, seconds, step=0.1):
    """cond()'s first true value within seconds, else None."""
    deadline = time.time() + seconds
    while True:
        value = cond()
        if value or time.time() >= deadline:
            return value or None
        time.sleep(step)


def install_file(path, data):
    """Replace path by data atomically (temporary file, fsync, rename)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else 0.0


class Daemon:
    """One modfilterd of the soak, restartable on its own spool."""

    def __init__(self, soak, name):
        self.soak, self.name = soak, name
        self.dir = os.path.join(soak.tmp, name)
        os.mkdir(self.dir)
        self.model = os.path.join(self.dir, "model.mfm")
        shutil.copy(soak.base_model, self.model)
        self.proc, self.port, self.logs = None, None, []
        # up: started and not being stopped; lives: +1 when it comes up and
        # +1 when it goes down (so an unchanged count means it stayed up)
        self.up, self.lives = False, 0

    def start(self):
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        log = os.path.join(self.dir, "daemon.%d.log" % len(self.logs))
        self.logs.append(log)
        sets = {"server.listen": "127.0.0.1:0", "server.port_file": port_file,
                "server.workers": "2",
                "redis.url": "redis://127.0.0.1:%d/0" % self.soak.rport,
                "redis.timeout_ms": "300",
                "spool.path": os.path.join(self.dir, "spool"),
                "model.state_dir": os.path.join(self.dir, "state"),
                "model.path": self.model,
                "limits.request_timeout_s": str(REQUEST_TIMEOUT_S),
                "limits.idle_timeout_s": str(IDLE_TIMEOUT_S),
                "auth.moderator_tokens": "chaos:" + MODERATOR_TOKEN,
                "queue.order": "urgent" if self.name == "b" else "oldest",
                "akismet.keys": "https://chaos.example:" + AKISMET_KEY}
        argv = [os.path.join(self.soak.args.bin, "modfilterd"), "-f",
                "-c", os.path.join(TOP, "config/modfilterd.conf")]
        for key, value in sets.items():
            argv += ["--set", "%s=%s" % (key, value)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(log, "w"), env=self.soak.env)
        for _ in range(600):
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                with open(port_file) as f:
                    self.port = int(f.read().strip())
                self.lives += 1
                self.up = True
                return
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited at start; see " + log)
            time.sleep(0.05)
        raise RuntimeError("daemon did not start")

    def going_down(self):
        self.up = False
        self.lives += 1

    def kill(self):
        self.going_down()
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def terminate(self):
        """SIGTERM; the exit status (None when it had to be killed)."""
        self.going_down()
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def hup(self):
        os.kill(self.proc.pid, signal.SIGHUP)

    def log_size(self):
        return os.path.getsize(self.logs[-1])

    def log_since(self, offset):
        with open(self.logs[-1], errors="replace") as f:
            f.seek(offset)
            return f.read()

    def connect(self, timeout=5):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, method, path, body=None, moderator=False):
        """(status, body) of one request on a new connection; None when it
        got no answer."""
        conn = self.connect()
        try:
            return self.soak.request(conn, method, path, body, moderator)
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def metrics(self):
        answer = self.get("GET", "/metrics")
        return answer[1].decode() if answer and answer[0] == 200 else ""

    def metric(self, name):
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def drain(self):
        """The spool backlog once it is empty or after 60 s."""
        wait_for(lambda: self.metric("modfilter_spool_records") == 0, 60, 0.2)
        return self.metric("modfilter_spool_records")

    def model_info(self):
        """(id, version) of modfilter_model_info, None when unreachable."""
        m = MODEL_INFO.search(self.metrics())
        return (m.group(1), int(m.group(2))) if m else None

    def learned(self):
        """What must be equal on every daemon that learned the same
        stream: the model id, the examples behind each head, the last
        event applied and the scores of AGREE_TEXTS (see agree())."""
        stats = self.get("GET", "/v1/stats", moderator=True)
        if not stats or stats[0] != 200:
            return None
        text, scores = self.metrics(), []
        for t in AGREE_TEXTS:
            answer = self.get("POST", "/v1/score", json.dumps({"text": t}))
            if not answer or answer[0] != 200:
                return None
            s = json.loads(answer[1])["scores"]
            scores.append(s)
        info = MODEL_INFO.search(text)
        return {"model": info and info.group(1),
                "examples": sorted(LABEL_EXAMPLES.findall(text)),
                "last_event": json.loads(stats[1])["training"]["last_event_id"],
                "scores": scores}


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = tempfile.mkdtemp(prefix="mf-chaos.")
        self.env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
        self.rport = free_port()
        self.redis = None
        self.base_model = os.path.join(TOP, "models/default.mfm")
        self.alt_model, self.alt_id = self.train_alt_model()
        self.daemons = [Daemon(self, "a"), Daemon(self, "b")]
        self.lock = threading.Lock()
        self.acked, self.not_queued, self.no_answer = set(), set(), 0
        self.spooled = 0
        self.akismet_acked = 0
        self.latencies = []
        self.statuses = {}
        self.slow = {}
        self.term_codes = []
        self.faults = {}
        self.stop = threading.Event()
        self.errors = []

    # ---- processes -------------------------------------------------------
    def train_alt_model(self):
        """A second valid model (tests/data/tiny.jsonl) and its id."""
        path = os.path.join(self.tmp, "alt.mfm")
        r = subprocess.run([os.path.join(self.args.bin, "modfilter"), "train",
                            "--model", path, os.path.join(TOP, "tests/data/tiny.jsonl")],
                           capture_output=True, text=True, env=self.env, check=True)
        with open(path, "rb") as f:
            return f.read(), re.search(r"model id (\S+)", r.stderr).group(1)

    def start_redis(self):
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.rport), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.tmp, "--logfile", os.path.join(self.tmp, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: self.rcli("PING").strip() == "PONG", 10, 0.05):
            raise RuntimeError("redis did not start")

    def rcli(self, *cmd, stdin=None):
        r = subprocess.run(["redis-cli", "-p", str(self.rport)] + list(cmd),
                           input=stdin, capture_output=True, text=True)
        return r.stdout

    def stop_all(self):
        for p in [d.proc for d in self.daemons] + [self.redis]:
            if p and p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                    p.wait()
                except ProcessLookupError:
                    pass

    # ---- HTTP ----------------------------------------------------------------
    def request(self, conn, method, path, body=None, moderator=False,
                ctype="application/json"):
        status, data, _ = self.request_full(conn, method, path, body, moderator, ctype)
        return status, data

    def request_full(self, conn, method, path, body=None, moderator=False,
                     ctype="application/json"):
        """(status, body, headers) of one request; counts the answer."""
        headers = {"Content-Type": ctype}
        if moderator:
            headers["Authorization"] = "Bearer " + MODERATOR_TOKEN
        conn.request(method, path, body, headers)
        r = conn.getresponse()
        data = r.read()
        route = path.split("?")[0]
        route = "/".join(route.split("/")[:3]) if route.startswith("/v1/") else route
        with self.lock:
            key = "%s %d" % (route, r.status)
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if r.status >= 500 and r.status != 503:
                self.errors.append("%s %s %d: %r" % (method, route, r.status, data[:200]))
        return r.status, data, dict((k.lower(), v) for k, v in r.getheaders())

    def send(self, rng, conn, method, path, body, ctype="application/json"):
        """(conn, (status, body, headers)) of one request on conn (opened
        to either daemon when None); (None, None) when it got no answer
        (the daemon was killed or stopped), counted."""
        try:
            conn = conn or rng.choice(self.daemons).connect()
            return conn, self.request_full(conn, method, path, body, ctype=ctype)
        except (OSError, http.client.HTTPException):
            with self.lock:
                self.no_answer += 1
            if conn:
                conn.close()
            time.sleep(0.05)
            return None, None

    def submitter(self, tid):
        rng = random.Random(self.args.seed * 100 + tid)
        conn, n = None, 0
        while not self.stop.is_set():
            n += 1
            cid = "c%d-%d" % (tid, n)
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40)))
            body = json.dumps({"id": cid, "text": text,
                               "author": {"name": "u%d" % rng.randint(1, 50)}})
            t0 = time.time()
            conn, answer = self.send(rng, conn, "POST", "/v1/comments", body)
            if answer is None:
                continue
            status, data, _ = answer
            with self.lock:
                self.latencies.append(time.time() - t0)
            if status == 200:
                reply = json.loads(data)
                with self.lock:
                    if reply.get("queued") is True:
                        self.acked.add(cid)
                        self.spooled += bool(reply.get("spooled"))
                    elif reply.get("queued") is False:
                        self.not_queued.add(cid)
                    else:
                        self.errors.append("no queued field: %r" % data[:200])
            elif status == 503:
                time.sleep(0.02)

    def akismet(self):
        rng = random.Random(self.args.seed * 100 + 99)
        conn, n = None, 0
        while not self.stop.is_set():
            n += 1
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40)))
            form = {"api_key": AKISMET_KEY, "blog": "https://chaos.example",
                    "user_ip": "192.0.2.%d" % rng.randint(1, 254),
                    "comment_type": "comment", "comment_author": "a%d" % n,
                    "comment_content": text}
            path = "/1.1/comment-check"
            if n % 25 == 0:
                path = rng.choice(("/1.1/submit-spam", "/1.1/submit-ham"))
            conn, answer = self.send(rng, conn, "POST", path, urllib.parse.urlencode(form),
                                     ctype="application/x-www-form-urlencoded")
            if answer is None:
                continue
            status, _, h = answer
            if status == 200 and path.endswith("comment-check"):
                cid, queued = h.get("x-akismet-guid"), h.get("x-modfilter-queued")
                with self.lock:
                    if not cid or queued not in ("true", "false"):
                        self.errors.append("comment-check without its headers: %r" % h)
                    elif queued == "true":
                        self.acked.add(cid)
                        self.akismet_acked += 1
                    else:
                        self.not_queued.add(cid)
            elif status == 503:
                time.sleep(0.02)

    def moderator(self):
        rng = random.Random(self.args.seed * 100 + 98)
        conn = None
        decided = []
        while not self.stop.is_set():
            time.sleep(0.05)
            try:
                if conn is None or rng.random() < 0.05:  # now and then the other daemon
                    if conn:
                        conn.close()
                    conn = rng.choice(self.daemons).connect()
                status, data = self.request(conn, "GET", "/v1/queue?limit=10", moderator=True)
                if status == 200:
                    for item in json.loads(data)["items"][: rng.randint(0, 4)]:
                        # mostly rejects: approvals teach the random texts as harmless, and
                        # a model that allows everything queues nothing
                        d = "approve" if rng.random() < 0.3 else "reject"
                        s, _ = self.request(conn, "POST", "/v1/queue/%s/decision" % item["id"],
                                            json.dumps({"decision": d}), moderator=True)
                        if s == 200:
                            decided.append(item["id"])
                r = rng.random()
                if r < 0.1:
                    self.request(conn, "POST", "/v1/queue/claim", json.dumps({"limit": 3}),
                                 moderator=True)
                elif r < 0.2:
                    status, data = self.request(conn, "GET", "/v1/queue?limit=5", moderator=True)
                    if status == 200:
                        ids = [i["id"] for i in json.loads(data)["items"]]
                        body = {"decisions": [{"id": i, "decision": "reject"} for i in ids]}
                        self.request(conn, "POST", "/v1/queue/decisions", json.dumps(body),
                                     moderator=True)
                        decided.extend(ids)
                elif r < 0.25:
                    self.request(conn, "GET", "/v1/history?limit=20", moderator=True)
                elif r < 0.3:
                    self.request(conn, "GET", "/v1/stats", moderator=True)
                if decided and rng.random() < 0.2:
                    self.request(conn, "POST", "/v1/queue/%s/undo" % decided.pop(), "{}",
                                 moderator=True)
                if rng.random() < 0.1:
                    self.request(conn, "POST", "/v1/train",
                                 json.dumps({"text": "buy cheap pills now", "labels": {"spam": 1}}),
                                 moderator=True)
            except (OSError, http.client.HTTPException):
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.1)

    # ---- slow and broken clients ------------------------------------------------
    # Each behaviour writes to its sockets and says what the daemon must do:
    # (statuses its answer may have, None for no answer at all; the earliest
    # and latest close, in seconds from the first byte), or None when
    # anything goes.
    def slow_drip(self, socks, rng):
        req = (b"POST /v1/score HTTP/1.1\r\nHost: chaos\r\nContent-Type: application/json\r\n"
               b"Content-Length: 60\r\n\r\n" + b'{"text": "' + b"x" * 48 + b'"}')
        deadline = time.time() + REQUEST_TIMEOUT_S + CUT_SLACK_S
        for i in range(len(req)):
            if time.time() >= deadline or select.select(socks, [], [], 0.3)[0]:
                break
            for s in socks:
                try:
                    s.send(req[i:i + 1])
                except OSError:
                    pass
        return {408}, REQUEST_TIMEOUT_S - 0.5, REQUEST_TIMEOUT_S + CUT_SLACK_S

    def slow_half_body(self, socks, rng):
        head = (b"POST /v1/comments HTTP/1.1\r\nHost: chaos\r\n"
                b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n")
        for s in socks:
            s.sendall(head + b'{"text": "' + b"y" * rng.randint(0, 150))
        if rng.random() < 0.5:
            return None  # closed at once
        for s in socks:
            s.shutdown(socket.SHUT_WR)
        return {400, 408, None}, 0, REQUEST_TIMEOUT_S + CUT_SLACK_S

    def slow_garbage(self, socks, rng):
        junk = rng.choice((
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))) + b"\r\n\r\n",
            b"GET /\r\n\r\n",
            b"POST /v1/comments HTTP/1.1\r\nno colon here\r\n\r\n",
            b"POST /v1/comments HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nX-Big: " + b"z" * 20000 + b"\r\n\r\n"))
        for s in socks:
            try:
                s.sendall(junk)
            except OSError:
                pass  # the daemon may answer and close before it read it all
        return set(range(400, 500)) | {501, 505}, 0, CUT_SLACK_S

    def slow_idle(self, socks, rng):
        return {None}, IDLE_TIMEOUT_S - 0.5, IDLE_TIMEOUT_S + CUT_SLACK_S

    def slow_read(self, socks, t0, deadline):
        """[(status of the first answer or None, seconds from t0 to the
        close or None)] of each socket, read until the daemon closes it or
        the deadline."""
        sel = selectors.DefaultSelector()
        got = {}
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            got[s] = [b"", None]
        while sel.get_map() and time.time() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.time())):
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    got[key.fileobj][0] += chunk
                else:
                    got[key.fileobj][1] = time.time() - t0
                    sel.unregister(key.fileobj)
        sel.close()
        status = re.compile(rb"^HTTP/1\.[01] (\d{3}) ")
        return [(int(m.group(1)) if (m := status.match(data)) else None, closed)
                for data, closed in got.values()]

    def slow_client(self, tid):
        rng = random.Random(self.args.seed * 100 + 50 + tid)
        behaviours = (self.slow_drip, self.slow_half_body, self.slow_garbage, self.slow_idle)
        while not self.stop.is_set():
            d, how = rng.choice(self.daemons), rng.choice(behaviours)
            lives, socks = d.lives, []
            if not d.up:
                time.sleep(0.1)
                continue
            try:
                for _ in range(rng.randint(1, 8)):
                    socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=2))
            except OSError:
                for s in socks:
                    s.close()
                time.sleep(0.1)  # restarting
                continue
            t0, failed = time.time(), None
            what = "%s on %s at %s" % (how.__name__, d.name,
                                       time.strftime("%H:%M:%S", time.gmtime(t0)))
            try:
                expect = how(socks, rng)
                if expect is not None:
                    results = self.slow_read(socks, t0, t0 + expect[2] + 0.5)
            except OSError as e:
                expect, failed = None, e
            for s in socks:
                s.close()
            if d.lives != lives:
                continue  # the daemon was stopped meanwhile: anything goes
            if failed:
                with self.lock:
                    self.errors.append("%s: %s" % (what, failed))
            elif expect is not None:
                self.slow_judge(what, expect, results)

    def slow_judge(self, what, expect, results):
        statuses, earliest, latest = expect
        kind = what.split()[0]
        with self.lock:
            self.slow[kind] = self.slow.get(kind, 0) + len(results)
            for status, closed in results:
                if status not in statuses:
                    self.errors.append("%s: answered %s, not %s" % (what, status, statuses))
                elif closed is None or closed > latest:
                    self.errors.append("%s: not closed within %g s" % (what, latest))
                elif closed < earliest:
                    self.errors.append("%s: closed after %.2f s, before %g s"
                                       % (what, closed, earliest))

    # ---- faults ----------------------------------------------------------------
    def fault(self):
        kind = self.rng.choice(("pause", "pause", "kill_redis", "kill_daemon",
                                "term_daemon", "hup", "swap_valid", "swap_damaged",
                                "drop_urgent"))
        self.faults[kind] = self.faults.get(kind, 0) + 1
        getattr(self, "fault_" + kind)(self.rng.choice(self.daemons))

    def fault_pause(self, _):
        os.kill(self.redis.pid, signal.SIGSTOP)
        time.sleep(self.rng.uniform(0.2, 3.0))
        os.kill(self.redis.pid, signal.SIGCONT)

    def fault_drop_urgent(self, _):
        self.rcli("DEL", "modfilter:queue:urgent:kept")

    def fault_kill_redis(self, _):
        self.redis.kill()
        self.redis.wait()
        time.sleep(self.rng.uniform(0.0, 1.5))
        self.start_redis()

    def fault_kill_daemon(self, d):
        d.kill()
        d.start()

    def fault_term_daemon(self, d):
        self.term_codes.append(d.terminate())
        d.start()

    def fault_hup(self, d):
        d.hup()

    def fault_swap_valid(self, d):
        self.swap_model(d, valid=True)

    def fault_swap_damaged(self, d):
        self.swap_model(d, valid=False)

    def swap_model(self, d, valid):
        """Another model (valid or damaged), SIGHUP, then the first one
        back, SIGHUP; each outcome checked."""
        before = d.model_info()
        if before is None:
            self.errors.append("swap: daemon %s unreachable before the swap" % d.name)
            return
        with open(d.model, "rb") as f:
            good = f.read()
        if valid:
            version = self.reload_model(d, self.alt_model, self.alt_id, before[1])
        else:
            self.refuse_model(d, self.damage(good), before)
            version = before[1]
        self.reload_model(d, good, before[0], version)

    def damage(self, data):
        n = len(data)
        how = self.rng.choice(("truncated", "flipped", "empty", "foreign"))
        if how == "truncated":
            return data[: self.rng.randrange(n)]
        if how == "flipped":
            i = self.rng.randrange(16, n)
            return data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
        if how == "empty":
            return b""
        return bytes(self.rng.randrange(256) for _ in range(4096))

    def reload_model(self, d, data, want_id, version):
        """Install a valid model, SIGHUP: the daemon must take it (its id,
        and a newer generation).  The generation it shows then."""
        install_file(d.model, data)
        d.hup()
        info = wait_for(lambda: (i := d.model_info()) and i[0] == want_id
                        and i[1] > version and i, RELOAD_WAIT_S)
        if not info:
            self.errors.append("swap: daemon %s did not take model %s (shows %s)"
                               % (d.name, want_id, d.model_info()))
            return version
        return info[1]

    def refuse_model(self, d, data, before):
        """Install a damaged model, SIGHUP: the daemon must log why it keeps
        the running model, keep it and go on answering."""
        offset = d.log_size()
        install_file(d.model, data)
        d.hup()
        if not wait_for(lambda: "keeping the running configuration and model"
                        in d.log_since(offset), RELOAD_WAIT_S):
            self.errors.append("swap: daemon %s logged no refusal of a damaged model"
                               % d.name)
        after = d.model_info()
        if after != before:
            self.errors.append("swap: daemon %s model %s after a damaged one, was %s"
                               % (d.name, after, before))
        answer = d.get("POST", "/v1/score", json.dumps({"text": AGREE_TEXTS[0]}))
        if not answer or answer[0] != 200:
            self.errors.append("swap: daemon %s did not score after a damaged model: %s"
                               % (d.name, answer))

    # ---- the run ---------------------------------------------------------------
    def run(self):
        self.start_redis()
        for d in self.daemons:
            d.start()
        threads = [threading.Thread(target=self.submitter, args=(t,)) for t in range(6)]
        threads += [threading.Thread(target=self.slow_client, args=(t,)) for t in range(3)]
        threads.append(threading.Thread(target=self.moderator))
        threads.append(threading.Thread(target=self.akismet))
        for t in threads:
            t.start()
        end = time.time() + self.args.seconds
        try:
            while time.time() < end:
                time.sleep(self.rng.uniform(0.5, 2.5))
                self.fault()
        finally:
            self.stop.set()
            for t in threads:
                t.join()
        # the spools must empty once Redis is steady, and learning catch up
        backlogs = [d.drain() for d in self.daemons]
        agreed = self.agree()
        urgent = self.urgent_order()
        for d in self.daemons:
            self.term_codes.append(d.terminate())
        return self.check(backlogs, agreed, urgent)

    def urgent_order(self):
        """A list on "b" (it keeps the urgent order first), then what the
        order must be: None when right, else what is wrong."""
        try:
            conn = self.daemons[1].connect(timeout=60)
            status, _ = self.request(conn, "GET", "/v1/queue?limit=1", moderator=True)
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            return "the list on b failed: %s" % e
        if status != 200:
            return "the list on b answered %d" % status
        mark = self.rcli("GET", "modfilter:queue:urgent:kept").strip()
        if not mark.isdigit():
            return "the marker is %r after a list" % mark
        queued = set(self.rcli("ZRANGE", "modfilter:queue", "0", "-1").split())
        zu = self.rcli("ZRANGE", "modfilter:queue:urgent", "0", "-1", "WITHSCORES").split()
        urgent = dict(zip(zu[0::2], (float(x) for x in zu[1::2])))
        if set(urgent) != queued:
            return ("%d queued ids not in the urgent order, %d there not queued"
                    % (len(queued - set(urgent)), len(set(urgent) - queued)))
        ids = sorted(queued)
        ids = random.Random(self.args.seed).sample(ids, min(2000, len(ids)))
        cmds = "".join("HGET modfilter:item:%s record\n" % i for i in ids)
        records = self.rcli(stdin=cmds).split("\n")
        for i, rec in zip(ids, records):
            scores = json.loads(rec).get("scores") or {}
            want = max([v for v in scores.values() if isinstance(v, (int, float))
                        and 0 < v < float("inf")] or [0])
            if urgent[i] != want:
                return "%s scored %r in the urgent order, its record says %r" % (
                    i, urgent[i], want)
        self.urgent_checked = len(queued)
        return None

    def agree(self):
        """Both daemons' learned() once they have applied the stream's last
        event, if they agree within 60 s; else prints both, returns None."""
        last = self.rcli("XREVRANGE", "modfilter:training", "+", "-", "COUNT", "1").split()
        last = last[0] if last else None
        seen = []

        def same():
            seen[:] = [d.learned() for d in self.daemons]
            return (all(s and s["last_event"] == last for s in seen)
                    and all(self.same_model(s, seen[0]) for s in seen) and seen[0])
        agreed = wait_for(same, 60, 0.5)
        if not agreed:
            for d, s in zip(self.daemons, seen):
                print("daemon %s: %s (stream's last event %s)" % (d.name, s, last))
            return None
        return dict(agreed, gap=self.score_gap(*seen))

    @staticmethod
    def score_gap(a, b):
        """The largest difference between two learned()'s scores."""
        return max(abs(sa[k] - sb.get(k, 2)) for sa, sb in zip(a["scores"], b["scores"])
                   for k in sa)

    def same_model(self, a, b):
        """Equal learned(): the same events in the same order make the
        same model, also across restarts from snapshots (README, Learning,
        Limits); the scores to SCORE_TOLERANCE."""
        return ({k: v for k, v in a.items() if k != "scores"}
                == {k: v for k, v in b.items() if k != "scores"}
                and self.score_gap(a, b) <= SCORE_TOLERANCE)

    def check(self, backlogs, agreed, urgent):
        ids = sorted(self.acked | self.not_queued)
        cmds = "".join("EXISTS modfilter:item:%s\n" % i for i in ids)
        out = self.rcli(stdin=cmds).split()
        exists = dict(zip(ids, (o == "1" for o in out)))
        missing = [i for i in self.acked if not exists.get(i)]
        stored = [i for i in self.not_queued if exists.get(i)]
        logs = [log for d in self.daemons for log in d.logs]
        sanitizer = [log for log in logs if "Sanitizer" in open(log, errors="replace").read()]
        p99 = percentile(self.latencies, 0.99)
        print("faults: %s" % ", ".join("%s %d" % kv for kv in sorted(self.faults.items())))
        print("answers: %s" % ", ".join("%s: %d" % kv for kv in sorted(self.statuses.items())))
        print("slow clients: %s" % ", ".join("%s %d" % kv for kv in sorted(self.slow.items())))
        print("acknowledged %d (%d spooled, %d through Akismet), not queued %d, no answer %d; "
              "spool backlogs at the end %s"
              % (len(self.acked), self.spooled, self.akismet_acked, len(self.not_queued),
                 self.no_answer, backlogs))
        print("submitters' latency: p50 %.3f s, p99 %.3f s, max %.3f s"
              % (percentile(self.latencies, 0.5), p99, percentile(self.latencies, 1)))
        if agreed:
            print("both daemons: model %s, last event %s, scores %s (a's), largest gap %.4f"
                  % (agreed["model"], agreed["last_event"], agreed["scores"], agreed["gap"]))
        print("SIGTERM exit statuses: %s" % self.term_codes)
        if urgent is None:
            print("urgent order: the %d queued ids, as their records score them"
                  % self.urgent_checked)
        ok = True
        for cond, msg in ((not missing, "acknowledged but not in Redis: %s" % missing[:10]),
                          (not stored, "answered queued:false but stored: %s" % stored[:10]),
                          (backlogs == [0, 0], "a spool did not drain"),
                          (all(c == 0 for c in self.term_codes), "a SIGTERM exit status was not 0"),
                          (not sanitizer, "sanitizer reports in %s" % sanitizer),
                          (p99 <= LATENCY_P99, "submitters' p99 over %g s" % LATENCY_P99),
                          (agreed is not None, "the daemons disagree on the model"),
                          (urgent is None, "urgent order: %s" % urgent),
                          (not self.errors, "errors (%d): %s" % (len(self.errors),
                                                                 self.errors[:5])),
                          (len(self.acked) > 0, "nothing was acknowledged")):
            if not cond:
                print("FAIL: " + msg)
                ok = False
        print("chaos: %s" % ("passed" if ok else "FAILED; logs in " + self.tmp))
        return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(TOP, "build"))
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    print("chaos: seed %d, %g s, %s" % (args.seed, args.seconds, args.bin))
    soak = Soak(args)
    ok = False
    try:
        ok = soak.run()
    finally:
        soak.stop_all()
        if ok:
            shutil.rmtree(soak.tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
