#!/usr/bin/env bash
# The committed default model (models/default.mfm), as make run and a fresh
# modfilterd use it: it loads, it has its two heads, and on comments written
# for a blog (tests/data/blog_comments.jsonl, in no training set) it lets
# most ordinary ones through, catches most spam, takes nothing civil for
# abuse and catches some of the abuse (the abuse head's known weakness:
# README, Known limits).  A guard for `make model`: a rebuild that does
# worse on these than the model of models/README.md fails here.
set -u
. "$(dirname "$0")/testlib.sh"
MF="$BIN/modfilter"
MODEL="$TOP/models/default.mfm"
BLOG="$TOP/tests/data/blog_comments.jsonl"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

"$MF" score --model "$MODEL" "$BLOG" >"$T/out" 2>"$T/err"
expect_eq "score exit" 0 $?
expect_eq "every comment scored" "$(wc -l <"$BLOG")" "$(wc -l <"$T/out")"

# counts: ordinary comments scored >= 0.5 for spam, spam ones caught,
# comments not abusive scored >= 0.5 for abuse, abusive ones caught
read -r flagged caught abusive insults labels < <(python3 - "$BLOG" "$T/out" <<'PY'
import json, sys
truth = {}
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    truth[r["id"]] = r["labels"]
flagged = caught = abusive = insults = 0
labels = set()
for line in open(sys.argv[2], encoding="utf-8"):
    o = json.loads(line)
    t = truth[o["id"]]
    labels.add(",".join(sorted(o["scores"])))
    spam = o["scores"]["spam"] >= 0.5
    abuse = o["scores"]["abuse"] >= 0.5
    flagged += spam and not t["spam"] and not t["abuse"]
    caught += spam and t["spam"]
    abusive += abuse and not t["abuse"]
    insults += abuse and t["abuse"]
print(flagged, caught, abusive, insults, "|".join(sorted(labels)))
PY
)
expect_eq "heads" "abuse,spam" "$labels"
# models/README.md: 5 of 36, 11 of 13, 0 and 6 of 15 (26 Nov); one more
# either way is within what a retrain on other data may move
[ "$flagged" -le 6 ]; expect_eq "ordinary comments sent to review ($flagged of 36)" 0 $?
[ "$caught" -ge 10 ]; expect_eq "spam caught ($caught of 13)" 0 $?
expect_eq "comments not abusive taken for abuse" 0 "$abusive"
[ "$insults" -ge 5 ]; expect_eq "abusive comments caught ($insults of 15)" 0 $?

# what a clear case looks like, through explain
"$MF" explain --model "$MODEL" "you are a fucking idiot" >"$T/ab" 2>&1
expect_grep "an insult is abuse" "^abuse +0\.[5-9]|^abuse +1\.0" "$T/ab"
"$MF" explain --model "$MODEL" \
    "Check out my channel, subscribe please! http://bit.ly/x" >"$T/sp" 2>&1
expect_grep "a channel plug is spam" "^spam +0\.9|^spam +1\.0" "$T/sp"
finish
