#!/usr/bin/env python3
"""Drive modfilterd's Akismet endpoints the way an Akismet client library
does: form bodies posted with urllib, the answer read as text, the
X-akismet-* headers read, the key in the body or in the Host name.

usage: akismet_client.py URL KEY BLOG   (exit status 0 when all is well)
"""
import sys
import urllib.parse
import urllib.request

URL, KEY, BLOG = sys.argv[1:4]
UA = "WordPress/6.4.2 | Akismet/5.3"
failures = 0


class Akismet:
    """The shape of the common client libraries (python-akismet,
    akismet.js, the WordPress plugin's Akismet::http_post)."""

    def __init__(self, key, blog, base, key_in_host=False):
        self.key, self.blog, self.base = key, blog, base
        self.key_in_host = key_in_host

    def _post(self, path, fields, charset="utf-8"):
        data = dict(fields)
        data.setdefault("blog", self.blog)
        headers = {
            "User-Agent": UA,
            "Content-Type": "application/x-www-form-urlencoded; charset="
            + charset,
        }
        if self.key_in_host:
            host = urllib.parse.urlsplit(self.base).netloc
            headers["Host"] = self.key + "." + host
        else:
            data["api_key"] = self.key
        body = urllib.parse.urlencode(data, encoding=charset).encode("ascii")
        req = urllib.request.Request(self.base + path, body, headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode("utf-8")
            return text, {k.lower(): v for k, v in resp.headers.items()}

    def verify_key(self):
        text, _ = self._post("/1.1/verify-key", {"key": self.key})
        return text == "valid"

    def comment_check(self, **fields):
        text, h = self._post("/1.1/comment-check", fields)
        if text == "invalid":
            raise ValueError(h.get("x-akismet-debug-help", "invalid"))
        return text == "true", h

    def submit_spam(self, **fields):
        return self._post("/1.1/submit-spam", fields)[0]

    def submit_ham(self, **fields):
        return self._post("/1.1/submit-ham", fields)[0]


def check(name, want, got):
    global failures
    if want != got:
        print(f"FAIL: client: {name}: want {want!r} got {got!r}")
        failures += 1


comment = dict(
    user_ip="203.0.113.5",
    user_agent="Mozilla/5.0 (Windows NT 10.0)",
    referrer="https://www.google.com/",
    permalink=BLOG + "/2026/hello-world/",
    comment_type="comment",
    comment_author="Jane Doe",
    comment_author_email="jane@example.org",
    comment_author_url="https://jane.example.org",
    comment_content="Great post! Visit https://cheap-pills.example for deals",
    blog_lang="en_us",
    blog_charset="UTF-8",
)

for in_host in (False, True):
    who = "host key" if in_host else "field key"
    api = Akismet(KEY, BLOG, URL, key_in_host=in_host)
    check(f"{who}: verify_key", True, api.verify_key())
    spam, h = api.comment_check(**dict(comment, comment_author="viagra-test-123"))
    check(f"{who}: test spam", True, spam)
    check(f"{who}: guid header", True, len(h.get("x-akismet-guid", "")) > 0)
    ham, h = api.comment_check(**dict(comment, user_role="administrator"))
    check(f"{who}: administrator", False, ham)
    check(f"{who}: no pro-tip for ham", None, h.get("x-akismet-pro-tip"))
    check(f"{who}: submit_spam", "Thanks for making the web a better place.",
          api.submit_spam(**dict(comment, is_test="1")))
    check(f"{who}: submit_ham", "Thanks for making the web a better place.",
          api.submit_ham(**dict(comment, is_test="true")))

bad = Akismet("wrongkey0000", BLOG, URL)
check("wrong key: verify_key", False, bad.verify_key())
try:
    bad.comment_check(**comment)
    check("wrong key: comment_check raises", True, False)
except ValueError as e:
    check("wrong key: debug help", "Invalid API key.", str(e))
try:
    Akismet(KEY, BLOG, URL).comment_check(comment_content="no ip")
    check("missing user_ip raises", True, False)
except ValueError as e:
    check("missing user_ip: debug help", 'Empty "user_ip" value', str(e))

# A client that encodes in the blog's ISO-8859-1 and says so.
api = Akismet(KEY, BLOG, URL)
text, h = api._post("/1.1/comment-check",
                    dict(comment, comment_content="¡Qué barato! http://x.example",
                         blog_charset="ISO-8859-1", is_test="1"),
                    charset="iso-8859-1")
check("latin-1 client answered", True, text in ("true", "false"))

print("client: ok" if failures == 0 else f"client: {failures} failure(s)")
sys.exit(1 if failures else 0)
