#!/usr/bin/env python3
"""Chaos soak: comments, moderation and training under random faults.

usage: scripts/chaos.py [--bin build] [--seconds 120] [--seed N]

Starts its own redis-server (appendonly, appendfsync always, so a Redis
killed with SIGKILL keeps what it acknowledged) on a free loopback port and
modfilterd (2 workers, spool on, a moderator token) on port 0, then for the
given time:

  - 6 submitters post real-looking comments, each with a new id, and note
    every answer (queued, spooled, verdict) and every request that got none;
  - an Akismet client posts comment-check forms (its answer's headers say
    whether the comment was queued, and under which id) and now and then
    submit-spam or submit-ham;
  - a moderator lists the queue, claims, decides (one at a time and in
    bulk), sometimes undoes, trains, and reads the history and stats;
  - every 0.5-2.5 s one fault: Redis paused (SIGSTOP) for 0.2-3 s, Redis
    killed and restarted, the daemon killed (SIGKILL) and restarted on its
    spool, the daemon stopped (SIGTERM, must exit 0) and restarted, or a
    SIGHUP.

Then the faults stop, the spool drains, and it checks what DESIGN.md
promises: every comment answered `queued: true` is in Redis (its item hash
exists), every one answered `queued: false` is not, no answer on any route
had a 5xx other than 503, each SIGTERM ended with status 0, and no daemon log holds a
sanitizer report.  Exit status 1 when a check fails.  Processes it started
are stopped by pid on exit.
"""
import argparse
import http.client
import json
import os
import random
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


AKISMET_KEY = "chaos-akismet-key-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = tempfile.mkdtemp(prefix="mf-chaos.")
        self.rport = free_port()
        self.redis = None
        self.daemon = None
        self.daemon_port = None
        self.daemon_logs = []
        self.lock = threading.Lock()
        self.acked, self.not_queued, self.no_answer = set(), set(), 0
        self.spooled = 0
        self.akismet_acked = 0
        self.statuses = {}
        self.term_codes = []
        self.faults = {}
        self.stop = threading.Event()
        self.errors = []

    # ---- processes -------------------------------------------------------
    def start_redis(self):
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.rport), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.tmp, "--logfile", os.path.join(self.tmp, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.rcli("PING").strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def rcli(self, *cmd, stdin=None):
        r = subprocess.run(["redis-cli", "-p", str(self.rport)] + list(cmd),
                           input=stdin, capture_output=True, text=True)
        return r.stdout

    def start_daemon(self):
        port_file = os.path.join(self.tmp, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        log = os.path.join(self.tmp, "daemon.%d.log" % len(self.daemon_logs))
        self.daemon_logs.append(log)
        env = dict(os.environ,
                   ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
        self.daemon = subprocess.Popen(
            [os.path.join(self.args.bin, "modfilterd"), "-f",
             "-c", os.path.join(TOP, "config/modfilterd.conf"),
             "--set", "server.listen=127.0.0.1:0",
             "--set", "server.port_file=" + port_file,
             "--set", "server.workers=2",
             "--set", "redis.url=redis://127.0.0.1:%d/0" % self.rport,
             "--set", "redis.timeout_ms=300",
             "--set", "spool.path=" + os.path.join(self.tmp, "spool"),
             "--set", "model.state_dir=" + os.path.join(self.tmp, "state"),
             "--set", "model.path=" + os.path.join(TOP, "models/default.mfm"),
             "--set", "auth.moderator_tokens=chaos:chaos-moderator-token-0123456789",
             "--set", "akismet.keys=https://chaos.example:" + AKISMET_KEY],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)
        for _ in range(600):
            if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
                with open(port_file) as f:
                    self.daemon_port = int(f.read().strip())
                return
            if self.daemon.poll() is not None:
                raise RuntimeError("daemon exited at start; see " + log)
            time.sleep(0.05)
        raise RuntimeError("daemon did not start")

    def stop_all(self):
        for p in (self.daemon, self.redis):
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
            headers["Authorization"] = "Bearer chaos-moderator-token-0123456789"
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

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.daemon_port, timeout=5)

    def send(self, conn, method, path, body, ctype="application/json"):
        """(conn, (status, body, headers)) of one request on conn (opened
        when None); (None, None) when it got no answer (the daemon was
        killed or stopped), counted."""
        try:
            conn = conn or self.connect()
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
            conn, answer = self.send(conn, "POST", "/v1/comments", body)
            if answer is None:
                continue
            status, data, _ = answer
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
            conn, answer = self.send(conn, "POST", path, urllib.parse.urlencode(form),
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
                if conn is None:
                    conn = self.connect()
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

    # ---- faults ----------------------------------------------------------------
    def fault(self):
        kind = self.rng.choice(("pause", "pause", "kill_redis", "kill_daemon",
                                "term_daemon", "hup"))
        self.faults[kind] = self.faults.get(kind, 0) + 1
        if kind == "pause":
            os.kill(self.redis.pid, signal.SIGSTOP)
            time.sleep(self.rng.uniform(0.2, 3.0))
            os.kill(self.redis.pid, signal.SIGCONT)
        elif kind == "kill_redis":
            self.redis.kill()
            self.redis.wait()
            time.sleep(self.rng.uniform(0.0, 1.5))
            self.start_redis()
        elif kind == "kill_daemon":
            self.daemon.kill()
            self.daemon.wait()
            self.start_daemon()
        elif kind == "term_daemon":
            self.daemon.terminate()
            try:
                self.term_codes.append(self.daemon.wait(timeout=30))
            except subprocess.TimeoutExpired:
                self.errors.append("daemon did not stop within 30 s of SIGTERM")
                self.daemon.kill()
                self.daemon.wait()
            self.start_daemon()
        else:
            os.kill(self.daemon.pid, signal.SIGHUP)

    def spool_backlog(self):
        try:
            conn = self.connect()
            _, data = self.request(conn, "GET", "/metrics")
            conn.close()
        except (OSError, http.client.HTTPException):
            return None
        for line in data.decode().splitlines():
            if line.startswith("modfilter_spool_records "):
                return float(line.split()[1])
        return None

    def run(self):
        self.start_redis()
        self.start_daemon()
        threads = [threading.Thread(target=self.submitter, args=(t,)) for t in range(6)]
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
        # drain: the spool must empty once Redis is steady
        deadline = time.time() + 60
        while time.time() < deadline and self.spool_backlog() != 0:
            time.sleep(0.2)
        backlog = self.spool_backlog()
        self.daemon.terminate()
        self.term_codes.append(self.daemon.wait(timeout=30))
        return self.check(backlog)

    def check(self, backlog):
        ids = sorted(self.acked | self.not_queued)
        cmds = "".join("EXISTS modfilter:item:%s\n" % i for i in ids)
        out = self.rcli(stdin=cmds).split()
        exists = dict(zip(ids, (o == "1" for o in out)))
        missing = [i for i in self.acked if not exists.get(i)]
        stored = [i for i in self.not_queued if exists.get(i)]
        sanitizer = [log for log in self.daemon_logs
                     if "Sanitizer" in open(log, errors="replace").read()]
        print("faults: %s" % ", ".join("%s %d" % kv for kv in sorted(self.faults.items())))
        print("answers: %s" % ", ".join("%s: %d" % kv for kv in sorted(self.statuses.items())))
        print("acknowledged %d (%d spooled, %d through Akismet), not queued %d, no answer %d; "
              "spool backlog at the end %s"
              % (len(self.acked), self.spooled, self.akismet_acked, len(self.not_queued),
                 self.no_answer, backlog))
        print("SIGTERM exit statuses: %s" % self.term_codes)
        ok = True
        for cond, msg in ((not missing, "acknowledged but not in Redis: %s" % missing[:10]),
                          (not stored, "answered queued:false but stored: %s" % stored[:10]),
                          (backlog == 0, "the spool did not drain"),
                          (all(c == 0 for c in self.term_codes), "a SIGTERM exit status was not 0"),
                          (not sanitizer, "sanitizer reports in %s" % sanitizer),
                          (not self.errors, "errors: %s" % self.errors[:5]),
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
    try:
        ok = soak.run()
    finally:
        soak.stop_all()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
