#!/usr/bin/env python3
"""Ordinary English text for the default model's spam head (models/README.md).

The YouTube set, the only one labelled for spam, has music-video chatter
for its ham, so on its own the spam head takes any wordy English comment
for spam.  This prints N tweets of the Davidson set as spam: 0 examples
(JSON Lines, their id, text and lang), picked without a link (a tweet
with a link may well be a promotion) by the smallest SHA-256 of their id,
so the pick is the same on every machine and Python version.

usage: scripts/spam-negatives.py DAVIDSON.jsonl [N]   (N: default 1000)
"""
import hashlib, json, re, sys

LINK = re.compile(r"https?:|www\.|\.com\b", re.I)


def main():
    path = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if not LINK.search(o["text"]):
                key = hashlib.sha256(o["id"].encode()).hexdigest()
                rows.append((key, o))
    rows.sort(key=lambda r: r[0])
    for _, o in rows[:n]:
        rec = {"id": o["id"], "text": o["text"], "lang": o.get("lang", "en"),
               "labels": {"spam": 0}}
        print(json.dumps(rec, ensure_ascii=False))


if __name__ == "__main__":
    main()
